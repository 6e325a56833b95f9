"""Every write to deals (商机) and payments (回款).

Audit rows are written by pghistory triggers (Deal, Payment, Customer) in the same
transaction, tagged with the acting user through `audited(by)`; each stage move also
writes a DealStageChange (the pipeline's history and the customer timeline's entry).

Derived figures kept here, in the transaction that changes their inputs:
- `Deal.received_total`: the sum of the deal's payments;
- `Customer.lifetime_value` (累计成交额): the sum of the payments whose `customer` is
  that customer (the end customer's view; a channel's revenue is never added to it,
  see selectors.channel_revenue).

Lock order, everywhere: the end customer's row, then the deal's row (customer_merge
locks customers and then moves deals, in the same order), so two writers never wait
on each other in opposite order.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.accounts.roles import Role
from crm.core.db import audited, retry_transient
from culture.deals import builder
from culture.deals.models import Deal, DealStage, DealStageChange, Payment
from customers.models import Customer


class Conflict(ValidationError):
    """Someone saved the deal since the form or board was loaded; `current` is the
    deal as saved now."""

    def __init__(self, current: Deal) -> None:
        super().__init__(_("该商机已被他人修改，请刷新后重试。"), code="conflict")
        self.current = current


def _require(by: Any, perm: str) -> None:
    if not by.has_perm(perm):
        raise PermissionDenied


def may_own(by: Any, owner: Any) -> bool:
    """Whether `by` may make `owner` a deal's owner: oneself always; a manager
    anyone active in their department, an admin anyone active."""
    if owner.pk == by.pk:
        return True
    if not owner.is_active or by.role not in (Role.MANAGER, Role.ADMIN):
        return False
    if by.role == Role.ADMIN:
        return True
    return (
        bool(by.team_id)
        and owner.team_id is not None
        and (owner.team.department_id == by.team.department_id)
    )


def first_stage() -> DealStage:
    stage = DealStage.objects.filter(is_active=True).order_by("position", "id").first()
    if stage is None:
        raise ValidationError({"stage": _("没有启用的商机阶段，请联系管理员。")})
    return stage


def _check_customer(by: Any, customer: Customer, channel: Customer | None) -> None:
    visible = Customer.objects.visible_to(by)
    ids = {customer.pk} | ({channel.pk} if channel else set())
    seen = set(visible.filter(pk__in=ids).values_list("pk", flat=True))
    if customer.pk not in seen:
        raise ValidationError({"customer": _("找不到该客户，或无权查看。")})
    if channel is not None and channel.pk not in seen:
        raise ValidationError({"channel": _("找不到该渠道，或无权查看。")})


def _lock_deal(deal: Deal) -> Deal:
    return Deal.objects.select_for_update(no_key=True).get(pk=deal.pk)


def _locked_current(deal: Deal, version: int) -> Deal:
    current = _lock_deal(deal)
    if current.version != version:
        raise Conflict(current)
    return current


def _stage_change(
    deal: Deal, *, by: Any, from_stage: DealStage | None, from_status: str
) -> DealStageChange:
    return DealStageChange.objects.create(
        deal=deal,
        from_stage=from_stage,
        to_stage=deal.stage,
        from_status=from_status,
        to_status=deal.status,
        by=by,
    )


# --- deals -------------------------------------------------------------------------------


@retry_transient
def deal_create(
    *,
    by: Any,
    customer: Customer,
    data: dict[str, Any],
    stage: DealStage | None = None,
    owner: Any = None,
    closed_on: dt.date | None = None,
) -> Deal:
    """A new deal of `customer`, owned by `by` (or `owner`), at `stage` (the first
    active one by default). The row and its checks come from builder.build."""
    _require(by, "deals.add_deal")
    owner = owner or by
    if not may_own(by, owner):
        raise ValidationError({"owner": _("不能把商机交给该负责人。")})
    _check_customer(by, customer, data.get("channel"))
    deal = builder.build(
        customer=customer,
        owner=owner,
        stage=stage or first_stage(),
        data=data,
        closed_on=closed_on,
    )
    with transaction.atomic(), audited(by):
        deal.save()
        _stage_change(deal, by=by, from_stage=None, from_status="")
    return deal


@retry_transient
def deal_update(*, by: Any, deal: Deal, version: int, data: dict[str, Any]) -> Deal:
    """Save the editable fields only if nobody saved since `version` was read;
    otherwise Conflict ("已被他人修改"). A new channel is copied to the payments."""
    _require(by, "deals.change_deal")
    unknown = set(data) - set(builder.EDITABLE_FIELDS)
    if unknown:
        raise ValidationError({sorted(unknown)[0]: _("该字段不可修改。")})
    if "owner" in data and not may_own(by, data["owner"]):
        if data["owner"].pk != deal.owner_id:
            raise ValidationError({"owner": _("不能把商机交给该负责人。")})
    channel = data.get("channel")
    if channel is not None and channel.pk != deal.channel_id:
        _check_customer(by, deal.customer, channel)
    with transaction.atomic(), audited(by):
        current = _locked_current(deal, version)
        for field, value in data.items():
            setattr(current, field, value)
        current.amount = builder.check_amount(current.amount)
        if current.amount < current.received_total:
            raise ValidationError(
                {
                    "amount": _("金额不能低于已回款 %(total)s 元。")
                    % {"total": f"{current.received_total:,}"}
                }
            )
        builder.check_date(current.expected_close_on, field="expected_close_on")
        builder.check_channel(current.channel, current.customer)
        if "owner" in data and "team" not in data:
            current.team_id = current.owner.team_id
        current.version += 1
        current.full_clean(
            exclude=["version", "customer", "channel", "owner", "team", "stage"]
        )
        current.save(update_fields=sorted({*data, "team", "version", "updated_at"}))
        if "channel" in data and current.channel_id != deal.channel_id:
            Payment.objects.filter(deal=current).update(channel=current.channel_id)
    return current


@retry_transient
def deal_move(*, by: Any, deal: Deal, stage: DealStage, version: int) -> Deal:
    """Move an open or won deal to `stage`: a won stage makes it won (closed today,
    or on its earlier closing date), an earlier stage reopens it. A lost deal is
    reopened first (deal_reopen)."""
    _require(by, "deals.change_deal")
    if not stage.is_active:
        raise ValidationError({"stage": _("该阶段已停用。")})
    with transaction.atomic(), audited(by):
        current = _locked_current(deal, version)
        if current.status == Deal.Status.LOST:
            raise ValidationError(_("已输单的商机请先重新打开。"))
        if current.stage_id == stage.pk:
            return current
        from_stage, from_status = current.stage, current.status
        builder.apply_stage(current, stage)
        current.stage_changed_at = timezone.now()
        current.version += 1
        current.save(
            update_fields=[
                "stage",
                "status",
                "closed_on",
                "stage_changed_at",
                "version",
                "updated_at",
            ]
        )
        _stage_change(current, by=by, from_stage=from_stage, from_status=from_status)
    return current


@retry_transient
def deal_lose(*, by: Any, deal: Deal, version: int, reason: str) -> Deal:
    """Mark the deal lost (输单) with its reason, which is required."""
    _require(by, "deals.change_deal")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"lost_reason": _("请填写输单原因。")})
    if len(reason) > 200:
        raise ValidationError({"lost_reason": _("输单原因不能超过 200 个字。")})
    with transaction.atomic(), audited(by):
        current = _locked_current(deal, version)
        if current.status == Deal.Status.LOST:
            raise ValidationError(_("该商机已输单。"))
        from_status = current.status
        current.status = Deal.Status.LOST
        current.lost_reason = reason
        current.closed_on = timezone.localdate()
        current.stage_changed_at = timezone.now()
        current.version += 1
        current.save(
            update_fields=[
                "status",
                "lost_reason",
                "closed_on",
                "stage_changed_at",
                "version",
                "updated_at",
            ]
        )
        _stage_change(current, by=by, from_stage=current.stage, from_status=from_status)
    return current


@retry_transient
def deal_reopen(*, by: Any, deal: Deal, version: int) -> Deal:
    """Take a lost deal back into the pipeline at its stage (won if that stage is)."""
    _require(by, "deals.change_deal")
    with transaction.atomic(), audited(by):
        current = _locked_current(deal, version)
        if current.status != Deal.Status.LOST:
            raise ValidationError(_("只有已输单的商机可以重新打开。"))
        current.status = Deal.Status.OPEN
        current.lost_reason = ""
        current.closed_on = None
        builder.apply_stage(current, current.stage)
        current.stage_changed_at = timezone.now()
        current.version += 1
        current.save(
            update_fields=[
                "status",
                "lost_reason",
                "closed_on",
                "stage_changed_at",
                "version",
                "updated_at",
            ]
        )
        _stage_change(
            current, by=by, from_stage=current.stage, from_status=Deal.Status.LOST
        )
    return current


# --- payments (回款) ----------------------------------------------------------------------


def _lock_customer_then_deal(deal: Deal) -> Deal:
    """Lock the deal's customer, then the deal (the module's lock order). A merge
    may have moved the deal to another customer meanwhile: then lock that one."""
    for _attempt in range(3):
        Customer.objects.select_for_update(no_key=True).filter(
            pk=deal.customer_id
        ).first()
        current = _lock_deal(deal)
        if current.customer_id == deal.customer_id:
            return current
        deal = current
    raise ValidationError(_("该商机的客户刚被合并，请刷新后重试。"))


@retry_transient
def payment_add(
    *,
    by: Any,
    deal: Deal,
    amount: Any,
    received_on: dt.date,
    note: str = "",
) -> Payment:
    """Record money received on `deal`; the deal's received total and its customer's
    lifetime value grow by the amount in the same transaction."""
    _require(by, "deals.add_payment")
    with transaction.atomic(), audited(by):
        current = _lock_customer_then_deal(deal)
        payment = builder.payment(
            deal=current, amount=amount, received_on=received_on, note=note, by=by
        )
        payment.save()
        Deal.objects.filter(pk=current.pk).update(
            received_total=F("received_total") + payment.amount
        )
        Customer.objects.filter(pk=current.customer_id).update(
            lifetime_value=F("lifetime_value") + payment.amount
        )
    return payment


@retry_transient
def payment_remove(*, by: Any, payment: Payment) -> Deal:
    """Delete a payment recorded in error; the totals shrink by its amount."""
    _require(by, "deals.delete_payment")
    with transaction.atomic(), audited(by):
        current = _lock_customer_then_deal(payment.deal)
        row = Payment.objects.filter(pk=payment.pk, deal=current).first()
        if row is None:
            raise ValidationError(_("该回款已被删除。"))
        row.delete()
        Deal.objects.filter(pk=current.pk).update(
            received_total=F("received_total") - row.amount
        )
        Customer.objects.filter(pk=row.customer_id).update(
            lifetime_value=F("lifetime_value") - row.amount
        )
    current.refresh_from_db()
    return current


def lifetime_value_of(customer_id: int) -> Any:
    """The sum of the payments whose end customer is `customer_id` (a rebuild)."""
    total = Payment.objects.filter(customer_id=customer_id).aggregate(t=Sum("amount"))
    return total["t"] or 0


# --- customer merge (customers.hooks) ---------------------------------------------------


def merge_deals(survivor: Customer, duplicate: Customer) -> None:
    """Move the duplicate's deals and payments, as customer and as channel, to the
    survivor, inside customer_merge's transaction (both customers locked). A deal of
    one through the other would name the survivor twice: it keeps no channel. The
    survivor's lifetime value is recomputed from its payments; the duplicate's is 0."""
    Deal.objects.filter(customer=duplicate, channel=survivor).update(channel=None)
    Deal.objects.filter(customer=survivor, channel=duplicate).update(channel=None)
    Payment.objects.filter(customer=duplicate, channel=survivor).update(channel=None)
    Payment.objects.filter(customer=survivor, channel=duplicate).update(channel=None)
    Deal.objects.filter(customer=duplicate).update(customer=survivor)
    Deal.objects.filter(channel=duplicate).update(channel=survivor)
    Payment.objects.filter(customer=duplicate).update(customer=survivor)
    Payment.objects.filter(channel=duplicate).update(channel=survivor)
    survivor.lifetime_value = lifetime_value_of(survivor.pk)
    Customer.objects.filter(pk=duplicate.pk).update(lifetime_value=0)


def merge_note(survivor: Customer, duplicate: Customer) -> list[str]:
    count = Deal.objects.filter(customer=duplicate).count()
    if not count:
        return []
    return [
        _("%(name)s 的 %(n)s 个商机及其回款将转到保留的客户，累计成交额随之合并。")
        % {"name": duplicate.name, "n": count}
    ]
