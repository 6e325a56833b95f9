"""Every write to segments: definitions, membership refreshes, static lists and the
bulk actions on a segment's members (follow-ups, reassignment)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.accounts.roles import Role
from crm.core import audit
from crm.core.db import audited
from crm.scheduler import services as scheduler
from culture.segments import rules
from culture.segments.models import (
    Segment,
    SegmentFollowUpJob,
    SegmentMember,
    SegmentMembershipEvent,
)
from customers import services as customer_services
from customers.models import Customer

SEGMENT_REFRESH = "segments.refresh"
SEGMENT_FOLLOWUPS = "segments.followups"
# Roles that may use segments at all; sales keep theirs private.
USER_ROLES = (Role.SALES, Role.MANAGER, Role.ADMIN)
SHARING_ROLES = (Role.MANAGER, Role.ADMIN)
# A static list takes at most this many customers from one search.
STATIC_ADD_MAX = getattr(settings, "KEHU_SEGMENT_STATIC_ADD_MAX", 10_000)
# Bulk follow-ups and reassignment act on at most this many members at once.
BULK_MAX = getattr(settings, "KEHU_SEGMENT_BULK_MAX", 2_000)
# Bulk follow-ups for more members than this are carried out in the background.
FOLLOWUPS_INLINE_MAX = 200

AUDIT_MEMBERS_ADDED = "segment_members_added"
AUDIT_MEMBERS_REMOVED = "segment_members_removed"
AUDIT_FOLLOWUPS = "segment_followups"
AUDIT_REASSIGN = "segment_reassign"


# --- permissions ------------------------------------------------------------------------


def can_use(user: Any) -> bool:
    return user.is_authenticated and user.role in USER_ROLES


def can_edit(user: Any, segment: Segment) -> bool:
    """The owner; an admin; a manager for what is shared with their team or department."""
    if not can_use(user):
        return False
    if user.role == Role.ADMIN or segment.owner_id == user.pk:
        return True
    return (
        user.role == Role.MANAGER
        and segment.visibility != Segment.Visibility.PRIVATE
        and Segment.objects.visible_to(user).filter(pk=segment.pk).exists()
    )


def can_bulk(user: Any) -> bool:
    """Bulk reassignment is for managers and admins (and needs reassign_customer)."""
    return user.role in SHARING_ROLES and user.has_perm("customers.reassign_customer")


# --- definitions ------------------------------------------------------------------------


def _check_definition(by: Any, segment: Segment) -> None:
    if (
        segment.visibility != Segment.Visibility.PRIVATE
        and by.role not in SHARING_ROLES
    ):
        raise ValidationError({"visibility": _("销售只能创建仅自己可见的分群。")})
    if segment.visibility != Segment.Visibility.PRIVATE and not segment.team_id:
        raise ValidationError({"visibility": _("不在任何团队中，无法共享。")})
    if segment.kind == Segment.Kind.DYNAMIC:
        try:
            segment.rules = rules.validate(segment.rules)
        except ValidationError as error:
            raise ValidationError({"rules": error.messages}) from error
    else:
        segment.rules = {}


def _schedule_refresh(segment: Segment, *, due_at: datetime | None = None) -> None:
    due_at = due_at or timezone.now()
    scheduler.action_schedule(
        kind=SEGMENT_REFRESH,
        target_id=segment.pk,
        due_at=due_at,
        key=f"segment:{segment.pk}:refresh:v{segment.version}",
    )


def segment_create(*, by: Any, data: dict) -> Segment:
    if not can_use(by):
        raise PermissionDenied
    segment = Segment(
        name=data["name"].strip(),
        description=data.get("description", "").strip(),
        kind=data.get("kind", Segment.Kind.DYNAMIC),
        rules=data.get("rules") or {},
        visibility=data.get("visibility", Segment.Visibility.PRIVATE),
        owner=by,
        team_id=by.team_id,
        department_id=by.team.department_id if by.team_id else None,
    )
    _check_definition(by, segment)
    if not segment.is_dynamic:
        segment.refreshed_at = timezone.now()  # an empty list is already current
    segment.full_clean()
    with transaction.atomic(), audited(by):
        segment.save()
        if segment.is_dynamic:
            _schedule_refresh(segment)
    return segment


def segment_update(*, by: Any, segment: Segment, data: dict, version: int) -> Segment:
    if not can_edit(by, segment):
        raise PermissionDenied
    for field in ("name", "description", "visibility", "rules"):
        if field in data:
            value = data[field]
            setattr(segment, field, value.strip() if isinstance(value, str) else value)
    _check_definition(by, segment)
    segment.full_clean()
    with transaction.atomic(), audited(by):
        changed = Segment.objects.filter(pk=segment.pk, version=version).update(
            name=segment.name,
            description=segment.description,
            visibility=segment.visibility,
            rules=segment.rules,
            version=F("version") + 1,
            updated_at=timezone.now(),
        )
        if not changed:
            raise ValidationError(_("该分群已被他人修改，请刷新后重试。"))
        segment.refresh_from_db()
        if segment.is_dynamic:
            _schedule_refresh(segment)
    return segment


def segment_delete(*, by: Any, segment: Segment) -> None:
    if not can_edit(by, segment):
        raise PermissionDenied
    with transaction.atomic(), audited(by):
        scheduler.action_cancel(key=f"segment:{segment.pk}:refresh:v{segment.version}")
        segment.delete()


# --- membership -------------------------------------------------------------------------

_REFRESH_SQL = """
WITH wanted(id) AS ({select}),
gone AS (
    DELETE FROM {member} m
    WHERE m.segment_id = %s
      AND NOT EXISTS (SELECT 1 FROM wanted w WHERE w.id = m.customer_id)
    RETURNING m.customer_id
),
came AS (
    INSERT INTO {member} (segment_id, customer_id, since)
    SELECT %s, w.id, %s FROM wanted w
    WHERE NOT EXISTS (
        SELECT 1 FROM {member} m WHERE m.segment_id = %s AND m.customer_id = w.id
    )
    RETURNING customer_id
),
logged AS (
    INSERT INTO {event} (segment_id, customer_id, action, at, reason)
    SELECT %s, customer_id, 'left', %s, %s FROM gone
    UNION ALL
    SELECT %s, customer_id, 'entered', %s, %s FROM came
    RETURNING action
)
SELECT
    count(*) FILTER (WHERE action = 'entered'),
    count(*) FILTER (WHERE action = 'left')
FROM logged
"""


def segment_refresh(
    *, segment_id: int, now: datetime | None = None, reason: str = "refresh"
) -> tuple[int, int]:
    """Recompute a dynamic segment's members in one SQL statement; returns (entered,
    left). The DELETE and INSERT of the data-modifying CTE see the same snapshot, and
    the segment row is locked so two refreshes of one segment take turns."""
    now = now or timezone.now()
    with transaction.atomic():
        segment = (
            Segment.objects.select_for_update(no_key=True).filter(pk=segment_id).first()
        )
        if segment is None:
            return 0, 0
        if not segment.is_dynamic:
            _recount(segment, now)
            return 0, 0
        try:
            tree = rules.validate(segment.rules)
        except ValidationError:
            # A rule naming a since deleted team or user: keep the members as they are.
            return 0, 0
        select, params = (
            rules.customers_matching(tree, now=now).values("pk").query.sql_with_params()
        )
        sql = _REFRESH_SQL.format(
            select=select,
            member=SegmentMember._meta.db_table,
            event=SegmentMembershipEvent._meta.db_table,
        )
        args = [
            *params,
            segment.pk,
            segment.pk,
            now,
            segment.pk,
            segment.pk,
            now,
            reason,
            segment.pk,
            now,
            reason,
        ]
        with connection.cursor() as cursor:
            cursor.execute(sql, args)
            entered, left = cursor.fetchone()
        Segment.objects.filter(pk=segment.pk).update(
            member_count=F("member_count") + entered - left, refreshed_at=now
        )
    return entered, left


def _recount(segment: Segment, now: datetime) -> None:
    Segment.objects.filter(pk=segment.pk).update(
        member_count=SegmentMember.objects.filter(segment=segment).count(),
        refreshed_at=now,
    )


def segment_refresh_action(action: Any) -> None:
    """Scheduler handler: refreshing twice is harmless (the second finds no change)."""
    segment_refresh(segment_id=action.target_id)


def segments_refresh_schedule(*, now: datetime | None = None) -> int:
    """The daily sweep: one durable refresh action per dynamic segment and day."""
    now = now or timezone.now()
    day = timezone.localdate(now).isoformat()
    ids = list(Segment.objects.dynamic().values_list("pk", flat=True))
    with transaction.atomic():
        for pk in ids:
            scheduler.action_schedule(
                kind=SEGMENT_REFRESH,
                target_id=pk,
                due_at=now,
                key=f"segment:{pk}:refresh:{day}",
            )
    return len(ids)


# --- static lists -----------------------------------------------------------------------


def _static_for(by: Any, segment: Segment) -> None:
    if not can_edit(by, segment):
        raise PermissionDenied
    if segment.is_dynamic:
        raise ValidationError(_("动态分群的成员由规则决定，不能手工增减。"))


def static_members_add(*, by: Any, segment: Segment, customers: QuerySet) -> int:
    """Add the customers of `customers` (already limited to what `by` may see) that
    are not members yet; refuses more than STATIC_ADD_MAX at once."""
    _static_for(by, segment)
    ids = list(customers.values_list("pk", flat=True)[: STATIC_ADD_MAX + 1])
    if len(ids) > STATIC_ADD_MAX:
        raise ValidationError(
            _("一次最多添加 %(n)s 位客户，请缩小搜索范围。") % {"n": STATIC_ADD_MAX}
        )
    now = timezone.now()
    with transaction.atomic(), audited(by):
        Segment.objects.select_for_update(no_key=True).filter(pk=segment.pk).first()
        existing = set(
            SegmentMember.objects.filter(
                segment=segment, customer_id__in=ids
            ).values_list("customer_id", flat=True)
        )
        new_ids = [pk for pk in ids if pk not in existing]
        SegmentMember.objects.bulk_create(
            SegmentMember(segment=segment, customer_id=pk, since=now) for pk in new_ids
        )
        SegmentMembershipEvent.objects.bulk_create(
            SegmentMembershipEvent(
                segment=segment,
                customer_id=pk,
                action=SegmentMembershipEvent.Action.ENTERED,
                at=now,
                reason="manual",
            )
            for pk in new_ids
        )
        Segment.objects.filter(pk=segment.pk).update(
            member_count=F("member_count") + len(new_ids), refreshed_at=now
        )
        audit.record(
            None, AUDIT_MEMBERS_ADDED, user=by, obj=segment, row_count=len(new_ids)
        )
    return len(new_ids)


def static_members_remove(*, by: Any, segment: Segment, customer_ids: list[int]) -> int:
    _static_for(by, segment)
    now = timezone.now()
    with transaction.atomic(), audited(by):
        Segment.objects.select_for_update(no_key=True).filter(pk=segment.pk).first()
        # Only members `by` may see: a shared list keeps the others' customers.
        visible = Customer.objects.visible_to(by).filter(pk__in=customer_ids[:BULK_MAX])
        members = SegmentMember.objects.filter(segment=segment, customer__in=visible)
        ids = list(members.values_list("customer_id", flat=True))
        SegmentMember.objects.filter(segment=segment, customer_id__in=ids).delete()
        SegmentMembershipEvent.objects.bulk_create(
            SegmentMembershipEvent(
                segment=segment,
                customer_id=pk,
                action=SegmentMembershipEvent.Action.LEFT,
                at=now,
                reason="manual",
            )
            for pk in ids
        )
        Segment.objects.filter(pk=segment.pk).update(
            member_count=F("member_count") - len(ids), refreshed_at=now
        )
        audit.record(
            None, AUDIT_MEMBERS_REMOVED, user=by, obj=segment, row_count=len(ids)
        )
    return len(ids)


# --- bulk actions on members ------------------------------------------------------------


def visible_members(*, user: Any, segment: Segment) -> QuerySet:
    """The segment's current members that `user` may see (not merged)."""
    return Customer.objects.visible_to(user).filter(
        merged_into__isnull=True,
        segment_memberships__segment=segment,
    )


def _bounded_ids(by: Any, segment: Segment) -> list[int]:
    ids = list(
        visible_members(user=by, segment=segment)
        .order_by("pk")
        .values_list("pk", flat=True)[: BULK_MAX + 1]
    )
    if len(ids) > BULK_MAX:
        raise ValidationError(
            _("该分群中你可见的客户超过 %(n)s 位，请先缩小分群再批量操作。")
            % {"n": BULK_MAX}
        )
    return ids


def segment_followups_create(
    *,
    by: Any,
    segment: Segment,
    note: str,
    due_at: datetime,
    assignee: Any = None,
) -> tuple[int, bool]:
    """A follow-up for every member `by` may see, for the customer's owner (or
    `assignee`); members without an owner go to `by`. Returns (members, is_deferred):
    up to FOLLOWUPS_INLINE_MAX are created now; more are a SegmentFollowUpJob carried
    out by a scheduled action (segments.followups), all or nothing.
    """
    if not can_use(by) or not by.has_perm("customers.add_followup"):
        raise PermissionDenied
    if not note.strip():
        raise ValidationError({"note": _("请填写跟进事项。")})
    if due_at < timezone.now() - timedelta(minutes=1):
        raise ValidationError({"due_at": _("跟进时间不能早于现在。")})
    ids = _bounded_ids(by, segment)
    if len(ids) <= FOLLOWUPS_INLINE_MAX:
        with transaction.atomic(), audited(by):
            _followups_for(by, ids, note=note, due_at=due_at, assignee=assignee)
            audit.record(
                None, AUDIT_FOLLOWUPS, user=by, obj=segment, row_count=len(ids)
            )
        return len(ids), False
    job = SegmentFollowUpJob(
        segment=segment,
        created_by=by,
        note=note.strip(),
        due_at=due_at,
        assignee=assignee,
    )
    job.full_clean()
    with transaction.atomic():
        job.save()
        scheduler.action_schedule(
            kind=SEGMENT_FOLLOWUPS,
            target_id=job.pk,
            due_at=timezone.now(),
            key=f"segment-followups:{job.pk}",
        )
    return len(ids), True


def _followups_for(
    by: Any, ids: list[int], *, note: str, due_at: datetime, assignee: Any
) -> None:
    customers = Customer.objects.filter(pk__in=ids).select_related("owner")
    for customer in customers:
        customer_services.followup_create(
            by=by,
            customer=customer,
            assignee=assignee or customer.owner or by,
            due_at=due_at,
            note=note,
        )


def segment_followups_run(action: Any) -> None:
    """Scheduler handler: the job's follow-ups in one transaction, then marked done;
    a second delivery finds it done and does nothing. The members are those its
    creator may see now, within the same bound."""
    with transaction.atomic():
        job = (
            SegmentFollowUpJob.objects.select_for_update(no_key=True, of=("self",))
            .select_related("created_by", "assignee", "segment")
            .filter(pk=action.target_id)
            .first()
        )
        if job is None or job.status == SegmentFollowUpJob.Status.DONE:
            return
        by = job.created_by
        ids = list(
            visible_members(user=by, segment=job.segment)
            .order_by("pk")
            .values_list("pk", flat=True)[:BULK_MAX]
        )
        with audited(by):
            _followups_for(
                by, ids, note=job.note, due_at=job.due_at, assignee=job.assignee
            )
        job.status = SegmentFollowUpJob.Status.DONE
        job.created_count = len(ids)
        job.done_at = timezone.now()
        job.save(update_fields=["status", "created_count", "done_at"])
        audit.record(
            None, AUDIT_FOLLOWUPS, user=by, obj=job.segment, row_count=len(ids)
        )


def segment_reassign(*, by: Any, segment: Segment, new_owner: Any) -> int:
    """Every member `by` may see moves to `new_owner` through customers_reassign."""
    if not can_bulk(by):
        raise PermissionDenied
    ids = _bounded_ids(by, segment)
    with transaction.atomic():
        moved = customer_services.customers_reassign(
            by=by, customer_ids=ids, new_owner=new_owner
        )
        audit.record(None, AUDIT_REASSIGN, user=by, obj=segment, row_count=moved)
    return moved


# --- customer merge (customers.hooks) ---------------------------------------------------


def merge_memberships(survivor: Customer, duplicate: Customer) -> None:
    """Inside customer_merge's transaction: the duplicate leaves every segment; the
    survivor takes its place in static lists (dynamic ones follow at their next
    refresh, which never counts a merged customer)."""
    now = timezone.now()
    memberships = list(
        SegmentMember.objects.filter(customer=duplicate).select_related("segment")
    )
    if not memberships:
        return
    already = set(
        SegmentMember.objects.filter(customer=survivor).values_list(
            "segment_id", flat=True
        )
    )
    events = []
    for member in memberships:
        events.append(
            SegmentMembershipEvent(
                segment_id=member.segment_id,
                customer=duplicate,
                action=SegmentMembershipEvent.Action.LEFT,
                at=now,
                reason="merge",
            )
        )
        if (
            member.segment.kind == Segment.Kind.STATIC
            and member.segment_id not in already
        ):
            SegmentMember.objects.create(
                segment_id=member.segment_id, customer=survivor, since=member.since
            )
            events.append(
                SegmentMembershipEvent(
                    segment_id=member.segment_id,
                    customer=survivor,
                    action=SegmentMembershipEvent.Action.ENTERED,
                    at=now,
                    reason="merge",
                )
            )
        else:
            Segment.objects.filter(pk=member.segment_id).update(
                member_count=F("member_count") - 1
            )
    SegmentMember.objects.filter(customer=duplicate).delete()
    SegmentMembershipEvent.objects.bulk_create(events)
