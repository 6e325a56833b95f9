"""What a deal stores, computed in one place for every way one is created.

Three paths create deals: `services.deal_create` (the form), the historical import
(`culture.deals.imports`) and the demo seeder (`culture.deals.demo`). Each calls
`build` for the unsaved row and its checks; a new stored field or rule is added here,
once. The checks, in this order on every path:
1. amount within 0 .. MAX_AMOUNT, dates within the business range (a closing date
   not in the future);
2. the channel is a dealer, distributor, agent, wholesaler or partner, and not the
   end customer itself;
3. the stage decides the status: a won stage (签约, 回款) makes the deal won and
   closed on `closed_on` (today if not given); a lost deal needs its reason;
4. the team defaults from the owner's team;
5. the model's own checks (`full_clean`).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from crm.core import bounds
from culture.deals.models import Deal, DealStage, Payment
from customers.models import Customer

# ¥9,999,999,999.99: well above any property deal, well inside the column.
MAX_AMOUNT = Decimal("9999999999.99")
CHANNEL_KINDS = (
    Customer.Kind.DEALER,
    Customer.Kind.DISTRIBUTOR,
    Customer.Kind.AGENT,
    Customer.Kind.WHOLESALER,
    Customer.Kind.PARTNER,
)
# What a form or an import row may set on a deal.
EDITABLE_FIELDS = (
    "channel",
    "title",
    "product",
    "amount",
    "owner",
    "team",
    "expected_close_on",
)


def check_amount(
    amount: Any, *, field: str = "amount", allow_zero: bool = True
) -> Decimal:
    try:
        value = Decimal(str(amount))
    except ArithmeticError as exc:
        raise ValidationError({field: _("请输入有效的金额。")}) from exc
    if not value.is_finite():
        raise ValidationError({field: _("请输入有效的金额。")})
    low = Decimal(0) if allow_zero else Decimal("0.01")
    if not low <= value <= MAX_AMOUNT:
        raise ValidationError(
            {
                field: _("金额须在 %(min)s 至 %(max)s 元之间。")
                % {"min": low, "max": f"{MAX_AMOUNT:,}"}
            }
        )
    if value != value.quantize(Decimal("0.01")):
        raise ValidationError({field: _("金额最多两位小数。")})
    return value


def check_date(value: dt.date | None, *, field: str, past_only: bool = False) -> None:
    if value is None:
        return
    high = bounds.today() if past_only else bounds.BUSINESS_DATE_MAX
    if not bounds.BUSINESS_DATE_MIN <= value <= high:
        message = (
            _("日期不能晚于今天。")
            if past_only and value > high
            else bounds.DATE_MESSAGE
            % {"min": bounds.BUSINESS_DATE_MIN.isoformat(), "max": high.isoformat()}
        )
        raise ValidationError({field: message})


def check_channel(channel: Customer | None, customer: Customer | None) -> None:
    if channel is None:
        return
    if channel.kind not in CHANNEL_KINDS:
        raise ValidationError(
            {"channel": _("渠道须是经销商、分销商、代理商、批发商或合作伙伴。")}
        )
    if customer is not None and channel.pk == customer.pk:
        raise ValidationError({"channel": _("渠道不能是客户本人。")})
    if channel.merged_into_id:
        raise ValidationError({"channel": _("该渠道客户已被合并。")})


def apply_stage(
    deal: Deal, stage: DealStage, *, closed_on: dt.date | None = None
) -> None:
    """Set stage, status and closing date as the stage decides (lost stays lost)."""
    deal.stage = stage
    if deal.status == Deal.Status.LOST:
        return
    if stage.is_won:
        deal.status = Deal.Status.WON
        deal.closed_on = closed_on or deal.closed_on or bounds.today()
    else:
        deal.status = Deal.Status.OPEN
        deal.closed_on = None


def build(
    *,
    customer: Customer,
    owner: Any,
    stage: DealStage,
    data: dict[str, Any],
    closed_on: dt.date | None = None,
    lost_reason: str = "",
) -> Deal:
    """The unsaved, checked deal; ValidationError (field-keyed) for what to fix."""
    unknown = set(data) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationError({sorted(unknown)[0]: _("该字段不可修改。")})
    if customer.merged_into_id:
        raise ValidationError({"customer": _("该客户已被合并，请选择合并后的客户。")})
    deal = Deal(customer=customer, owner=owner, stage=stage)
    for field, value in data.items():
        setattr(deal, field, value)
    deal.amount = check_amount(data.get("amount", 0))
    check_date(deal.expected_close_on, field="expected_close_on")
    check_date(closed_on, field="closed_on", past_only=True)
    check_channel(deal.channel, customer)
    if not stage.is_active:
        raise ValidationError({"stage": _("该阶段已停用。")})
    if "team" not in data or data["team"] is None:
        deal.team_id = owner.team_id
    if lost_reason.strip():
        deal.status = Deal.Status.LOST
        deal.lost_reason = lost_reason.strip()[:200]
        deal.closed_on = closed_on
    apply_stage(deal, stage, closed_on=closed_on)
    # The foreign keys are rows the caller fetched (no lookup per deal). The model's
    # CheckConstraints are the checks above (amount, lost reason, channel, dates) and
    # the database's: Django would validate each with a query of its own, three per
    # deal, which made the demo's 14,000 deals take over a minute.
    deal.full_clean(
        exclude=["version", "customer", "channel", "owner", "team", "stage"],
        validate_constraints=False,
    )
    return deal


def payment(
    *, deal: Deal, amount: Any, received_on: dt.date, note: str = "", by: Any = None
) -> Payment:
    """The unsaved payment of `deal` (customer and channel copied from it)."""
    if deal.status == Deal.Status.LOST:
        raise ValidationError(_("已输单的商机不能登记回款。"))
    value = check_amount(amount, allow_zero=False)
    if received_on is None:
        raise ValidationError({"received_on": _("请填写回款日期。")})
    check_date(received_on, field="received_on", past_only=True)
    if deal.received_total + value > deal.amount:
        raise ValidationError(
            {
                "amount": _("累计回款 %(total)s 元将超过商机金额 %(amount)s 元。")
                % {
                    "total": f"{deal.received_total + value:,}",
                    "amount": f"{deal.amount:,}",
                }
            }
        )
    row = Payment(
        deal=deal,
        customer_id=deal.customer_id,
        channel_id=deal.channel_id,
        amount=value,
        received_on=received_on,
        note=(note or "").strip()[:200],
        created_by=by,
    )
    # Its CheckConstraints (amount > 0, the date's range) are checked above.
    row.full_clean(
        exclude=["deal", "customer", "channel", "created_by"],
        validate_constraints=False,
    )
    return row
