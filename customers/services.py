"""Every write to customers, their contacts and follow-ups.

Audit rows are written by pghistory triggers in the same transaction, tagged with the
acting user through `pghistory.context`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from crm.core.db import audited, lock_in_order, retry_transient
from crm.notifications import services as notifications
from crm.scheduler import services as scheduler
from customers import builder, identity, phones
from customers.models import (
    ContactLog,
    Customer,
    CustomerPhone,
    CustomerProfile,
    FollowUp,
    PoolEvent,
)

# What a form may set on a customer and its profile: the builder's lists.
EDITABLE_FIELDS = builder.EDITABLE_FIELDS
PROFILE_FIELDS = builder.PROFILE_FIELDS
FOLLOWUP_REMINDER = "customers.followup_reminder"


class EditConflict(Exception):
    """Someone else saved the customer (or its profile) since the form was loaded;
    `current` is the row as saved now."""

    def __init__(self, current: Customer | CustomerProfile) -> None:
        super().__init__("stale customer version")
        self.current = current


# --- customers -------------------------------------------------------------------------


def _save_phones(customer: Customer, numbers: list[tuple[str, str]]) -> None:
    """Replace the customer's phones; a number owned by another customer is refused.

    check_numbers_free has refused taken numbers before the transaction; this check
    and the unique index catch a number registered since, without naming its holder.
    """
    taken = (
        CustomerPhone.objects.filter(number__in=[n for n, _ in numbers])
        .exclude(customer=customer)
        .order_by("pk")
        .first()
    )
    if taken:
        raise ValidationError(
            {
                "phone": _("电话 %(number)s 刚被另一位客户登记。")
                % {"number": taken.number}
            }
        )
    CustomerPhone.objects.filter(customer=customer).exclude(
        number__in=[n for n, _ in numbers]
    ).delete()
    for position, (number, kind) in enumerate(numbers):
        try:
            # Savepoint: a concurrent insert of the same number loses here, not later.
            with transaction.atomic():
                CustomerPhone.objects.update_or_create(
                    customer=customer,
                    number=number,
                    defaults={"kind": kind, "is_primary": position == 0},
                )
        except IntegrityError as exc:
            raise ValidationError(
                {
                    "phone": _("电话 %(number)s 刚被另一位客户登记。")
                    % {"number": number}
                }
            ) from exc
    customer.phone = numbers[0][0] if numbers else ""


def phone_taken(number: str, holder_name: str | None) -> ValidationError:
    """The refusal of a phone number another customer holds (forms and imports).

    `holder_name` is None when the holder is outside the user's scope: then the
    message says only that another team's customer has it (as the look-alike list
    and the import preview do).
    """
    if holder_name is None:
        message = _("电话 %(number)s 已属于另一团队的现有客户。") % {"number": number}
    else:
        message = _("电话 %(number)s 已属于客户“%(name)s”。") % {
            "number": number,
            "name": holder_name,
        }
    return ValidationError({"phone": message})


def id_number_taken(holder_name: str | None) -> ValidationError:
    """The refusal of an ID number another customer holds (forms and imports);
    `holder_name` None: a holder outside the user's scope, not named."""
    if holder_name is None:
        return ValidationError({"id_number": _("身份证号已属于另一团队的现有客户。")})
    return ValidationError(
        {"id_number": _("该身份证号已属于客户“%(name)s”。") % {"name": holder_name}}
    )


def lookups_exhausted(by: Any) -> bool:
    """Whether `by` reached the hourly limit of reveals and out-of-scope duplicate hits
    before this request (the hits this request recorded were allowed when made)."""
    from crm.core import audit
    from customers import selectors

    earlier = selectors.reveals_last_hour(by) - len(
        getattr(audit.current_request(), "kehu_hidden_hits", ())
    )
    return earlier >= settings.KEHU_REVEAL_HOURLY_LIMIT


def check_numbers_free(
    *,
    by: Any,
    phone_numbers: list[str] = (),
    id_number: str | None = None,
    customer: Customer | None = None,
) -> None:
    """Refuse a phone or ID number that another customer holds, before any write.

    The holder is named only if `by` may see it. A holder outside `by`'s scope (another
    team's customer, or the pool's) is not named; each such refusal is written to the
    audit log (DUPLICATE_HIDDEN, denied) and counts toward KEHU_REVEAL_HOURLY_LIMIT,
    like an ID reveal. Once the limit is reached no new number is looked up for `by`
    in that hour: any number not already `customer`'s is refused with the limit
    message, taken or not, so the refusal itself no longer answers "is this number
    registered". Counting and recording happen under a lock of the user's row (the one
    customer_reveal takes), so parallel requests cannot pass the limit together; the
    audit row commits before the refusal is raised.
    """
    with transaction.atomic():
        lookup_lock(by)
        refusal = _numbers_refusal(
            by=by, phone_numbers=phone_numbers, id_number=id_number, customer=customer
        )
    if refusal is not None:
        raise refusal


def lookup_lock(by: Any) -> None:
    """Serialise `by`'s reveals and out-of-scope duplicate hits (inside a transaction)."""
    get_user_model().objects.select_for_update(no_key=True).filter(pk=by.pk).first()


def _numbers_refusal(
    *,
    by: Any,
    phone_numbers: list[str],
    id_number: str | None,
    customer: Customer | None,
) -> ValidationError | None:
    """check_numbers_free's refusal, or None; runs under the user's lookup lock."""
    from crm.core import audit

    numbers = [
        number for number, _kind in builder.normalise_phones(list(phone_numbers))
    ]
    index = None
    if id_number and id_number.strip():
        index = identity.blind_index(identity.normalise_id_number(id_number))
    own = set()
    if customer is not None and customer.pk:
        own = set(
            CustomerPhone.objects.filter(customer=customer).values_list(
                "number", flat=True
            )
        )
        if index and index == customer.id_number_index:
            index = None
    new_numbers = [n for n in numbers if n not in own]
    if not new_numbers and not index:
        return None
    if lookups_exhausted(by):
        limit = settings.KEHU_REVEAL_HOURLY_LIMIT
        audit.record(
            None,
            audit.DUPLICATE_HIDDEN,
            user=by,
            outcome=audit.FAILED,
            detail=f"hourly limit {limit}",
        )
        return ValidationError(
            {
                "phone" if new_numbers else "id_number": _(
                    "您在一小时内的查重已 %(limit)s 次命中范围外的客户，达到上限，"
                    "暂时不能登记新的电话或身份证号，请稍后再试或联系主管。"
                )
                % {"limit": limit}
            }
        )
    others = Customer.objects.exclude(pk=customer.pk) if customer else Customer.objects
    # The ID number first, then the number registered first: customer_create's order.
    holder = index and others.filter(id_number_index=index).only("pk", "name").first()
    taken_phone = None
    if not holder and new_numbers:
        phone = (
            CustomerPhone.objects.filter(number__in=new_numbers)
            .exclude(customer=customer)
            .select_related("customer")
            .only("number", "customer__id", "customer__name")
            .order_by("pk")
            .first()
        )
        holder, taken_phone = (phone.customer, phone.number) if phone else (None, None)
    if not holder:
        return None

    def refusal(name: str | None) -> ValidationError:
        return (
            id_number_taken(name)
            if taken_phone is None
            else phone_taken(taken_phone, name)
        )

    if Customer.objects.visible_to(by).filter(pk=holder.pk).exists():
        return refusal(holder.name)
    audit_hidden_hit(
        by=by, customer=holder, detail="id_number" if taken_phone is None else "phone"
    )
    return refusal(None)


def audit_hidden_hit(*, by: Any, customer: Customer, detail: str) -> None:
    """Record that a duplicate check told `by` about `customer`, outside their scope.

    One row per customer and request: the create page's look-alike list and its
    refusal on the confirming post are one hit, not two.
    """
    from crm.core import audit

    request = audit.current_request()
    seen = getattr(request, "kehu_hidden_hits", None)
    if seen is None:
        seen = set()
        if request is not None:
            request.kehu_hidden_hits = seen
    if customer.pk in seen:
        return
    seen.add(customer.pk)
    audit.record(
        None,
        audit.DUPLICATE_HIDDEN,
        user=by,
        obj=customer,
        outcome=audit.DENIED,
        detail=detail,
    )


def _set_id_number(customer: Customer, raw: str | None) -> None:
    if raw is None:
        return
    if not raw.strip():
        customer.id_number_cipher = ""
        customer.id_number_index = None
        customer.id_number_masked = ""
        return
    number = identity.normalise_id_number(raw)
    index = identity.blind_index(number)
    if Customer.objects.filter(id_number_index=index).exclude(pk=customer.pk).exists():
        # Registered since check_numbers_free ran: not named, as in _save_phones.
        raise ValidationError({"id_number": _("该身份证号刚被另一位客户登记。")})
    builder.store_id_number(customer, number)


@retry_transient
def customer_create(
    *,
    by: Any,
    data: dict[str, Any],
    phone_numbers: list[str] = (),
    id_number: str | None = None,
    profile: dict[str, Any] | None = None,
    owner: Any = "by",
) -> Customer:
    """Create a customer owned by `by` (or `owner`; None puts it in the public pool).

    The rows and checks come from customers.builder, as for an import or the intake.
    """
    if not by.has_perm("customers.add_customer"):
        raise PermissionDenied
    owner = by if owner == "by" else owner
    new = builder.build(
        data=data,
        phone_numbers=phone_numbers,
        id_number=id_number,
        profile=profile,
        owner=owner,
    )
    check_numbers_free(by=by, phone_numbers=new.numbers, id_number=id_number)
    try:
        with transaction.atomic():
            index = new.customer.id_number_index
            if index and Customer.objects.filter(id_number_index=index).exists():
                # Registered since check_numbers_free ran: not named, as for a phone.
                raise ValidationError(
                    {"id_number": _("该身份证号刚被另一位客户登记。")}
                )
            builder.clean(new)
            builder.save(new, by=by)
    except IntegrityError as exc:
        # The unique ID-number index lost a race with a concurrent create.
        raise ValidationError(
            {"id_number": _("该身份证号刚被另一位客户登记。")}
        ) from exc
    return new.customer


def caller_register(*, by: Any, name: str, phone: str, source: str = "") -> Customer:
    """An unknown caller, registered by the service desk while taking the call.

    The desk may not create customers (customer_create): only this, an unverified
    contact owned by nobody and outside the public pool, which an agent later
    verifies (customer_verify). Built by customers.builder like every customer; a
    phone another customer holds is refused, naming the holder if `by` may see it.
    Call it inside the caller's transaction (service.services.caller_ticket_create).
    """
    if not by.has_perm("customers.register_caller"):
        raise PermissionDenied
    if not name.strip():
        raise ValidationError({"name": _("请填写来电人姓名。")})
    if not phone.strip():
        raise ValidationError({"phone": _("请填写来电号码。")})
    new = builder.build(
        data={"name": name.strip(), "source": source or Customer.Source.PHONE},
        phone_numbers=[phone],
        verified=False,
    )
    check_numbers_free(by=by, phone_numbers=new.numbers)
    builder.clean(new)
    with transaction.atomic():
        return builder.save(new, by=by)


@retry_transient
def customer_verify(*, by: Any, customer: Customer) -> Customer:
    """An agent confirms an unverified contact is a real person: from now on it is a
    customer like any other, in the public pool (公海) unless someone owns it."""
    if not by.has_perm("customers.verify_customer"):
        raise PermissionDenied
    now = timezone.now()
    with transaction.atomic(), audited(by):
        changed = Customer.objects.filter(
            pk=customer.pk, is_verified=False, merged_into__isnull=True
        ).update(
            is_verified=True,
            pool_entered_at=Case(
                When(owner__isnull=True, then=Value(now)),
                default=F("pool_entered_at"),
            ),
            updated_at=now,
            version=F("version") + 1,
        )
        if not changed:
            raise ValidationError(_("该客户已核实，或已被合并。"))
        PoolEvent.objects.create(
            customer_id=customer.pk, actor=by, action=PoolEvent.Action.VERIFY
        )
    customer.refresh_from_db()
    return customer


@retry_transient
def customer_update(
    *,
    by: Any,
    customer: Customer,
    version: int,
    data: dict[str, Any],
    phone_numbers: list[str] | None = None,
    id_number: str | None = None,
) -> Customer:
    """Save only if nobody saved since `version` was read; otherwise EditConflict."""
    if not by.has_perm("customers.change_customer"):
        raise PermissionDenied
    for field in data:
        if field not in EDITABLE_FIELDS:
            raise ValidationError({field: _("该字段不可修改。")})
        setattr(customer, field, data[field])
    numbers = (
        builder.normalise_phones(phone_numbers) if phone_numbers is not None else None
    )
    check_numbers_free(
        by=by,
        phone_numbers=[n for n, _kind in numbers or []],
        id_number=id_number,
        customer=customer,
    )
    with transaction.atomic(), audited(by):
        # Lock the row, then compare versions: a stale form never overwrites.
        current = Customer.objects.select_for_update(no_key=True).get(pk=customer.pk)
        if current.version != version:
            raise EditConflict(current)
        # Derived and kept by the payment services (culture.deals), which may have
        # changed it since `customer` was read: never write back the stale figure.
        customer.lifetime_value = current.lifetime_value
        _set_id_number(customer, id_number)
        if numbers is not None:
            _save_phones(customer, numbers)
        customer.version = version + 1
        customer.full_clean(exclude=["name_grams"])
        customer.save()
    return customer


@retry_transient
def customer_review_clear(*, by: Any, customer: Customer) -> Customer:
    """The values an import left out (Customer.review_flags) have been checked: the
    flag goes (audited: the update event keeps what it said)."""
    if not by.has_perm("customers.change_customer"):
        raise PermissionDenied
    with transaction.atomic(), audited(by):
        Customer.objects.filter(pk=customer.pk).exclude(review_flags={}).update(
            review_flags={}, version=F("version") + 1, updated_at=timezone.now()
        )
    customer.refresh_from_db()
    return customer


@retry_transient
def profile_update(
    *, by: Any, customer: Customer, data: dict[str, Any], version: int | None = None
) -> CustomerProfile:
    """Save the one-to-one profile; with `version` (what the form read, 0 for no
    profile yet) only if nobody saved since, otherwise EditConflict, as customer_update.
    """
    if not by.has_perm("customers.change_customer"):
        raise PermissionDenied
    locked = CustomerProfile.objects.select_for_update(no_key=True)
    with transaction.atomic(), audited(by):
        profile = locked.filter(customer=customer).first()
        if profile is None:
            try:
                # The first save inserts the profile with its values (one audit row).
                # Of two first saves at once, the second waits on the primary key
                # for the first to commit, then compares versions like any other.
                with transaction.atomic():
                    return _profile_save(CustomerProfile(customer=customer), data)
            except IntegrityError:
                profile = locked.get(customer=customer)
        if version is not None and profile.version != version:
            raise EditConflict(profile)
        return _profile_save(profile, data)


def _profile_save(profile: CustomerProfile, data: dict[str, Any]) -> CustomerProfile:
    for field in PROFILE_FIELDS:
        if field in data:
            setattr(profile, field, data[field])
    profile.version += 1
    # Uniqueness of the one profile per customer is the primary key's to enforce.
    profile.full_clean(validate_unique=False)
    profile.save()
    return profile


def find_duplicates(
    *,
    phone_numbers: list[str] = (),
    id_number: str = "",
    name: str = "",
    organization_name: str = "",
    exclude_pk: int | None = None,
) -> list[Customer]:
    """Existing customers that look like the one being entered (any visibility)."""
    condition = Q(pk__in=[])
    numbers = []
    for raw in phone_numbers:
        try:
            numbers.append(phones.normalise_phone(raw)[0])
        except ValidationError:
            continue
    if numbers:
        condition |= Q(phones__number__in=numbers)
    if id_number and id_number.strip():
        try:
            number = identity.normalise_id_number(id_number)
        except ValidationError:
            number = ""
        if number:
            condition |= Q(id_number_index=identity.blind_index(number))
    if name and organization_name:
        condition |= Q(name=name.strip(), organization__name=organization_name.strip())
    if name and not organization_name:
        condition |= Q(name=name.strip(), is_organization=True)
    candidates = (
        Customer.objects.filter(condition, merged_into__isnull=True)
        .select_related("owner", "team")
        .distinct()
    )
    if exclude_pk:
        candidates = candidates.exclude(pk=exclude_pk)
    return list(candidates[:10])


def customer_reveal_id_number(*, by: Any, customer: Customer, reason: str) -> str:
    """The clear ID number for a role allowed to see it; every reveal is audited."""
    if not by.has_perm("customers.reveal_customer_pii"):
        raise PermissionDenied
    if not reason.strip():
        raise ValidationError({"reason": _("请说明查看原因。")})
    if not customer.id_number_cipher:
        return ""
    from crm.core import audit

    audit.record(
        None, audit.ID_REVEALED, user=by, obj=customer, detail=reason.strip()[:200]
    )
    return identity.decrypt(customer.id_number_cipher)


# --- contacts and follow-ups -----------------------------------------------------------


@retry_transient
def contact_log_create(
    *,
    by: Any,
    customer: Customer,
    channel: str,
    summary: str,
    occurred_at: datetime | None = None,
    direction: str = ContactLog.Direction.OUTBOUND,
    outcome: str = "",
    sentiment: str = ContactLog.Sentiment.NEUTRAL,
    next_step: str = "",
    next_step_at: datetime | None = None,
) -> ContactLog:
    """Record a contact; a next step with a date becomes a follow-up for `by`."""
    if not by.has_perm("customers.add_contactlog"):
        raise PermissionDenied
    if customer.merged_into_id:
        # An old link to a merged record: the contact belongs to the survivor.
        customer = Customer.objects.get(pk=customer.merged_into_id)
    log = ContactLog(
        customer=customer,
        author=by,
        channel=channel,
        summary=summary.strip(),
        occurred_at=occurred_at or timezone.now(),
        direction=direction,
        outcome=outcome,
        sentiment=sentiment,
        next_step=next_step.strip(),
        next_step_at=next_step_at,
    )
    log.full_clean()
    with transaction.atomic(), audited(by):
        log.save()
        Customer.objects.filter(pk=customer.pk).update(
            contact_count=F("contact_count") + 1,
            last_contacted_at=log.occurred_at,
            updated_at=timezone.now(),
        )
        if next_step_at:
            followup_create(
                by=by,
                customer=customer,
                assignee=by,
                due_at=next_step_at,
                note=log.next_step or log.summary[:200],
                source_contact=log,
            )
    return log


@retry_transient
def followup_create(
    *,
    by: Any,
    customer: Customer,
    assignee: Any,
    due_at: datetime,
    note: str,
    source_contact: ContactLog | None = None,
) -> FollowUp:
    """A promise to get back to the customer; its reminder is a scheduled action."""
    followup = FollowUp(
        customer=customer,
        assignee=assignee,
        created_by=by,
        due_at=due_at,
        note=note.strip(),
        source_contact=source_contact,
    )
    followup.full_clean()
    with transaction.atomic(), audited(by):
        followup.save()
        scheduler.action_schedule(
            kind=FOLLOWUP_REMINDER,
            target_id=followup.pk,
            due_at=due_at,
            key=f"followup:{followup.pk}:remind",
        )
    return followup


@retry_transient
def followup_complete(*, by: Any, followup: FollowUp) -> FollowUp:
    with transaction.atomic(), audited(by):
        changed = FollowUp.objects.filter(
            pk=followup.pk, status=FollowUp.Status.OPEN
        ).update(status=FollowUp.Status.DONE, done_at=timezone.now())
        if changed:
            scheduler.action_cancel(key=f"followup:{followup.pk}:remind")
    followup.refresh_from_db()
    return followup


def followup_remind(action: Any) -> None:
    """Scheduled-action handler: tell the assignee a follow-up is due (idempotent)."""
    followup = (
        FollowUp.objects.select_related("customer", "assignee")
        .filter(pk=action.target_id)
        .first()
    )
    if followup is None or followup.status != FollowUp.Status.OPEN:
        return
    notifications.notification_send(
        recipient=followup.assignee,
        key=action.idempotency_key,
        reason=gettext_noop("你是这条跟进的负责人"),
        **_reminder(followup, hidden=_out_of_assignees_scope([followup])),
    )
    FollowUp.objects.filter(pk=followup.pk, reminded_at__isnull=True).update(
        reminded_at=timezone.now()
    )


def _reminder(followup: FollowUp, *, hidden: set[int]) -> dict[str, str]:
    """A reminder's title, body and link; for a customer the assignee may no longer
    see (merged into another team's customer, or the assignee changed team) it names
    nothing of it and links nowhere (the page would answer 404)."""
    if followup.pk in hidden:
        return {
            "title": _("跟进到期：该客户已不在您的范围内"),
            "body": _("这条跟进的客户已转给其他团队，请联系主管处理。"),
            "url": "",
        }
    return {
        "title": _("跟进到期：%(customer)s") % {"customer": followup.customer.name},
        "body": followup.note,
        "url": followup.get_absolute_url(),
    }


def _out_of_assignees_scope(followups: list[FollowUp]) -> set[int]:
    """The follow-ups whose assignee may not see their customer. An owner always sees
    their own customer; other assignees are checked, one query each."""
    others: dict[int, list[FollowUp]] = {}
    for followup in followups:
        if followup.assignee_id != followup.customer.owner_id:
            others.setdefault(followup.assignee_id, []).append(followup)
    hidden: set[int] = set()
    if not others:
        return hidden
    users = get_user_model().objects.in_bulk(list(others))
    for user_id, items in others.items():
        user = users.get(user_id)
        seen = (
            set(
                Customer.objects.visible_to(user)
                .filter(pk__in=[f.customer_id for f in items])
                .values_list("pk", flat=True)
            )
            if user is not None
            else set()
        )
        hidden |= {f.pk for f in items if f.customer_id not in seen}
    return hidden


def followups_remind(actions: list[Any]) -> None:
    """Batch handler for a chunk of follow-up reminders, same effect as
    `followup_remind` on each: one query for the follow-ups, one INSERT for the
    notifications, one UPDATE for `reminded_at`, then the owed e-mails over one mail
    connection. Done, cancelled or deleted follow-ups are skipped."""
    key_of = {action.target_id: action.idempotency_key for action in actions}
    due = list(
        FollowUp.objects.select_related("customer").filter(
            pk__in=key_of, status=FollowUp.Status.OPEN
        )
    )
    hidden = _out_of_assignees_scope(due)
    with transaction.atomic():
        notifications.notify_many(
            [
                notifications.Draft(
                    recipient_id=followup.assignee_id,
                    key=key_of[followup.pk],
                    reason=gettext_noop("你是这条跟进的负责人"),
                    **_reminder(followup, hidden=hidden),
                )
                for followup in due
            ]
        )
        FollowUp.objects.filter(
            pk__in=[followup.pk for followup in due], reminded_at__isnull=True
        ).update(reminded_at=timezone.now())
    # Also the e-mails a killed earlier attempt still owes, stale follow-up or not.
    notifications.notifications_email_pending(keys=list(key_of.values()))


# --- ownership: reassignment and the public pool ---------------------------------------


@retry_transient
def customers_reassign(
    *, by: Any, customer_ids: list[int] | None, new_owner: Any, from_owner: Any = None
) -> int:
    """Move customers (and their open follow-ups) to `new_owner`; returns the count.

    With `from_owner` instead of ids, every customer of that person that `by` may see
    moves (a salesperson leaving).
    """
    if not by.has_perm("customers.reassign_customer"):
        raise PermissionDenied
    if new_owner.role not in ("sales", "manager"):
        raise ValidationError({"new_owner": _("只能转给销售或经理。")})
    with transaction.atomic(), audited(by):
        customers = Customer.objects.visible_to(by)
        if from_owner is not None:
            customers = customers.filter(owner=from_owner, merged_into__isnull=True)
        else:
            customers = customers.filter(pk__in=customer_ids or [])
        ids = list(customers.values_list("pk", flat=True))
        moved = Customer.objects.filter(pk__in=ids).update(
            owner=new_owner,
            team=new_owner.team,
            pool_entered_at=None,
            updated_at=timezone.now(),
            version=F("version") + 1,
        )
        FollowUp.objects.filter(
            customer_id__in=ids, status=FollowUp.Status.OPEN
        ).update(assignee=new_owner)
        PoolEvent.objects.bulk_create(
            PoolEvent(
                customer_id=pk,
                user=new_owner,
                actor=by,
                action=PoolEvent.Action.REASSIGN,
            )
            for pk in ids
        )
    return moved


@retry_transient
def pool_claim(*, by: Any, customer_id: int) -> Customer:
    """Take a customer from the public pool. Of two simultaneous claims, one wins."""
    if by.role not in ("sales", "manager"):
        raise PermissionDenied
    today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    with transaction.atomic(), audited(by):
        # Serialise one person's claims so the daily limit holds under concurrency.
        get_user_model().objects.select_for_update(no_key=True).get(pk=by.pk)
        claimed_today = PoolEvent.objects.filter(
            user=by, action=PoolEvent.Action.CLAIM, created_at__gte=today
        ).count()
        if claimed_today >= settings.KEHU_POOL_CLAIM_LIMIT:
            raise ValidationError(
                _("今天已领取 %(n)d 位客户，达到上限。") % {"n": claimed_today}
            )
        won = Customer.objects.filter(
            pk=customer_id,
            owner__isnull=True,
            is_verified=True,
            merged_into__isnull=True,
        ).update(
            owner=by,
            team=by.team,
            pool_entered_at=None,
            updated_at=timezone.now(),
            version=F("version") + 1,
        )
        if not won:
            raise ValidationError(_("该客户已被他人领取。"))
        PoolEvent.objects.create(
            customer_id=customer_id, user=by, actor=by, action=PoolEvent.Action.CLAIM
        )
    return Customer.objects.get(pk=customer_id)


@retry_transient
def pool_release(*, by: Any, customer: Customer, reason: str = "") -> Customer:
    """Give a customer back to the pool, saying why: the pool shows who released it,
    when and why (the preview before claiming, the pool's list)."""
    if customer.owner_id != by.pk and not by.has_perm("customers.reassign_customer"):
        raise PermissionDenied
    reason = " ".join(reason.split())
    if not reason:
        raise ValidationError({"reason": _("请说明放回公海的原因。")})
    with transaction.atomic(), audited(by):
        _return_to_pool(
            [customer.pk],
            actor=by,
            action=PoolEvent.Action.RELEASE,
            reason=reason[:200],
        )
    customer.refresh_from_db()
    return customer


def _return_to_pool(
    ids: list[int], *, actor: Any, action: str, reason: str = ""
) -> None:
    owners = dict(
        Customer.objects.filter(pk__in=ids, owner__isnull=False).values_list(
            "pk", "owner_id"
        )
    )
    Customer.objects.filter(pk__in=owners).update(
        owner=None,
        team=None,
        pool_entered_at=timezone.now(),
        updated_at=timezone.now(),
        version=F("version") + 1,
    )
    FollowUp.objects.filter(customer_id__in=owners, status=FollowUp.Status.OPEN).update(
        status=FollowUp.Status.CANCELLED
    )
    PoolEvent.objects.bulk_create(
        PoolEvent(
            customer_id=pk, user_id=owner_id, actor=actor, action=action, reason=reason
        )
        for pk, owner_id in owners.items()
    )


def _last_touch() -> Any:
    from django.db.models.functions import Coalesce

    return Coalesce("last_contacted_at", "created_at")


def pool_return_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Daily: warn owners a few days ahead, then return neglected customers to the pool."""
    now = now or timezone.now()
    days = settings.KEHU_POOL_RETURN_DAYS
    warn_days = settings.KEHU_POOL_WARNING_DAYS
    # Key accounts never drop into the pool: they get a dormant follow-up instead.
    owned = (
        Customer.objects.filter(owner__isnull=False, merged_into__isnull=True)
        .exclude(Q(is_key_account=True) | Q(tier=Customer.Tier.A))
        .alias(last_touch=_last_touch())
    )
    expired = list(
        owned.filter(last_touch__lt=now - timedelta(days=days)).values_list(
            "pk", flat=True
        )
    )
    warned = 0
    for customer in (
        owned.filter(
            last_touch__lt=now - timedelta(days=days - warn_days),
            last_touch__gte=now - timedelta(days=days),
        )
        .select_related("owner")
        .iterator()
    ):
        created = notifications.notification_send(
            recipient=customer.owner,
            key=f"pool-warning:{customer.pk}:{customer.owner_id}:{customer.last_contacted_at or customer.created_at:%Y%m%d%H%M%S}",
            title=_("客户即将回到公海：%(name)s") % {"name": customer.name},
            body=_("已超过 %(days)d 天未联系，%(warn)d 天内不联系将自动回到公海。")
            % {"days": days - warn_days, "warn": warn_days},
            url=customer.get_absolute_url(),
            reason=gettext_noop("你是该客户的负责人"),
        )
        warned += created is not None
    with transaction.atomic(), audited(None):
        _return_to_pool(
            expired,
            actor=None,
            action=PoolEvent.Action.AUTO_RETURN,
            reason=_("超过 %(days)d 天未联系") % {"days": days},
        )
    return {"warned": warned, "returned": len(expired)}


def dormant_key_accounts_sweep(*, now: datetime | None = None) -> int:
    """Daily: key accounts nobody contacted for N days get a follow-up for their owner."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.KEHU_DORMANT_KEY_ACCOUNT_DAYS)
    dormant = (
        Customer.objects.filter(
            Q(is_key_account=True) | Q(tier=Customer.Tier.A),
            owner__isnull=False,
            merged_into__isnull=True,
        )
        .alias(last_touch=_last_touch())
        .filter(last_touch__lt=cutoff)
        .exclude(followups__status=FollowUp.Status.OPEN)
        .select_related("owner")
    )
    created = 0
    for customer in dormant.iterator():
        followup_create(
            by=customer.owner,
            customer=customer,
            assignee=customer.owner,
            due_at=now,
            note=_("重点客户已 %(days)d 天未联系，请尽快回访。")
            % {"days": settings.KEHU_DORMANT_KEY_ACCOUNT_DAYS},
        )
        created += 1
    return created


# --- merging duplicates ---------------------------------------------------------------

MERGE_FILL_FIELDS = (
    "email",
    "wechat_id",
    "address",
    "province",
    "city",
    "district",
    "organization",
    "parent",
    "notes",
)


@retry_transient
def customer_merge(*, by: Any, survivor: Customer, duplicate: Customer) -> Customer:
    """Move everything attached to `duplicate` onto `survivor`; nothing is deleted.

    The duplicate stays, marked merged_into the survivor, so its history and audit
    trail remain readable. Both rows are locked in id order (no deadlock between two
    merges), and a customer that is already merged cannot take part again.
    """
    from customers import hooks

    if not by.has_perm("customers.merge_customer"):
        raise PermissionDenied
    if survivor.pk == duplicate.pk:
        raise ValidationError(_("不能与自己合并。"))
    with transaction.atomic(), audited(by):
        locked = lock_in_order(Customer, survivor.pk, duplicate.pk)
        survivor, duplicate = locked[survivor.pk], locked[duplicate.pk]
        if survivor.merged_into_id or duplicate.merged_into_id:
            raise ValidationError(_("其中一位客户已被合并，请刷新后重试。"))
        ContactLog.objects.filter(customer=duplicate).update(customer=survivor)
        FollowUp.objects.filter(customer=duplicate).update(customer=survivor)
        PoolEvent.objects.filter(customer=duplicate).update(customer=survivor)
        CustomerPhone.objects.filter(customer=duplicate).update(
            customer=survivor, is_primary=False
        )
        Customer.objects.filter(organization=duplicate).update(organization=survivor)
        Customer.objects.filter(parent=duplicate).update(parent=survivor)
        for field in MERGE_FILL_FIELDS:
            if not getattr(survivor, field) and getattr(duplicate, field):
                setattr(survivor, field, getattr(duplicate, field))
        if not survivor.id_number_index and duplicate.id_number_index:
            survivor.id_number_cipher = duplicate.id_number_cipher
            survivor.id_number_masked = duplicate.id_number_masked
            index = duplicate.id_number_index
            # Free the unique index before the survivor takes it.
            Customer.objects.filter(pk=duplicate.pk).update(id_number_index=None)
            survivor.id_number_index = index
        survivor.tags = sorted(set(survivor.tags) | set(duplicate.tags))
        # lifetime_value (累计成交额) is derived from payments: the deals app's merge
        # hook moves them and recomputes it.
        survivor.contact_count += duplicate.contact_count
        survivor.is_key_account = survivor.is_key_account or duplicate.is_key_account
        stamps = [
            s for s in (survivor.last_contacted_at, duplicate.last_contacted_at) if s
        ]
        survivor.last_contacted_at = max(stamps) if stamps else None
        _merge_profiles(survivor, duplicate)
        for hook in hooks.merge_hooks:
            hook(survivor, duplicate)
        survivor.version += 1
        survivor.save()
        Customer.objects.filter(pk=duplicate.pk).update(
            merged_into=survivor, version=F("version") + 1, updated_at=timezone.now()
        )
    return survivor


def _merge_profiles(survivor: Customer, duplicate: Customer) -> None:
    kept = CustomerProfile.objects.filter(customer=survivor).first()
    other = CustomerProfile.objects.filter(customer=duplicate).first()
    if other is None:
        return
    if kept is None:
        kept = CustomerProfile(customer=survivor)
    for field in PROFILE_FIELDS:
        if not getattr(kept, field) and getattr(other, field):
            setattr(kept, field, getattr(other, field))
    # A profile form opened before the merge must not overwrite what it brought.
    kept.version += 1
    kept.save()


# --- tiers (set by the value app's rules, culture/value/services.py) ----------------------


@retry_transient
def customers_tier_set(
    *, by: Any, tiers: dict[int, str]
) -> list[tuple[int, str, str, int | None]]:
    """Set the tier (A/B/C/D) of many customers in one statement; `by` is None for the
    rules' scheduled job. Returns (id, old tier, new tier, owner id) of each customer
    whose tier changed; the audit rows come from the customers' history triggers."""
    if by is not None and not by.has_perm("customers.change_customer"):
        raise PermissionDenied
    bad = {t for t in tiers.values() if t not in Customer.Tier.values}
    if bad:
        raise ValidationError({"tier": _("价值等级须为 A、B、C 或 D。")})
    if not tiers:
        return []
    ids, values = list(tiers), [tiers[pk] for pk in tiers]
    table = Customer._meta.db_table
    with transaction.atomic(), audited(by), connection.cursor() as cursor:
        # The FROM's old row is the snapshot before this UPDATE: it gives the old tier.
        cursor.execute(
            f"UPDATE {table} c SET tier = v.tier, version = c.version + 1, "  # noqa: S608  # nosec B608 # table names from the models' _meta, values bound
            "updated_at = now() "
            "FROM unnest(%s::bigint[], %s::text[]) AS v(id, tier), "
            f"{table} o "
            "WHERE c.id = v.id AND o.id = c.id AND c.tier <> v.tier "
            "RETURNING c.id, o.tier, c.tier, c.owner_id",
            [ids, values],
        )
        return cursor.fetchall()


def customer_tier_set(*, by: Any, customer: Customer, tier: str) -> Customer:
    """Set one customer's tier (audited); see customers_tier_set."""
    customers_tier_set(by=by, tiers={customer.pk: tier})
    customer.refresh_from_db()
    return customer
