"""The rule language of dynamic segments, and its compiler to SQL.

A definition is a tree of groups: ``{"op": "and"|"or", "rules": [node, ...]}``, where
a node is a group or a rule ``{"field": ..., "operator": ..., "value": ...}``.

``validate(tree)`` checks every field, operator and value against FIELDS (bounds,
known codes, existing ids) and returns the normalised tree, or raises ValidationError
with a Chinese message naming the rule. ``compile_q(tree)`` turns a validated tree into
one Q over customers.Customer: plain columns for the customer's own fields, and
Exists / IN (… GROUP BY … HAVING …) subqueries for behaviour (contacts, tickets,
payments, deals, handover appointments), so that counting and refreshing a segment is
one SQL statement and no customer is ever loaded into Python.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Count, Exists, OuterRef, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.core import bounds
from culture.deals.models import Deal, Payment
from customers.models import Customer
from service.handover.models import Appointment, HandoverEvent
from service.models import Ticket, TicketType

MAX_DEPTH = 3  # the top group, a group inside it, and one more
MAX_RULES = 20
MAX_LIST = 50  # values in one "in" list
MAX_DAYS = 3650
MAX_COUNT = 1000
MAX_AMOUNT = Decimal("999999999999.99")
TEXT_MAX = 30

# Macro-regions (大区) as provinces are stored: full names as the forms and imports
# write them (浙江省, 上海市, 广西壮族自治区), and the short names people also type.
MACRO_REGIONS: dict[str, tuple[str, ...]] = {
    "华东": ("上海", "江苏", "浙江", "安徽", "福建", "江西", "山东"),
    "华北": ("北京", "天津", "河北", "山西", "内蒙古"),
    "华南": ("广东", "广西", "海南", "香港", "澳门"),
    "华中": ("河南", "湖北", "湖南"),
    "西南": ("重庆", "四川", "贵州", "云南", "西藏"),
    "西北": ("陕西", "甘肃", "青海", "宁夏", "新疆"),
    "东北": ("辽宁", "吉林", "黑龙江"),
}
_FULL_SUFFIX = {
    "上海": "市",
    "北京": "市",
    "天津": "市",
    "重庆": "市",
    "内蒙古": "自治区",
    "广西": "壮族自治区",
    "西藏": "自治区",
    "宁夏": "回族自治区",
    "新疆": "维吾尔自治区",
    "香港": "特别行政区",
    "澳门": "特别行政区",
}


def provinces_of(macro: str) -> list[str]:
    names = []
    for short in MACRO_REGIONS[macro]:
        names += [short, short + _FULL_SUFFIX.get(short, "省")]
    return names


# --- field catalogue --------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    label: Any
    operators: dict[str, Any]  # code -> label
    # "choice" (codes from `choices`), "text" (free words), "user", "team",
    # "days", "tickets", "money", "deals", "handover": the value's shape.
    kind: str
    choices: Callable[[], list[tuple[str, Any]]] | None = None


IN_OPS = {"in": gettext_lazy("属于"), "not_in": gettext_lazy("不属于")}
COUNT_OPS = {
    "count_gte": gettext_lazy("次数 ≥"),
    "none": gettext_lazy("没有"),
}
MONEY_OPS = {
    "gte": gettext_lazy("≥"),
    "lte": gettext_lazy("≤"),
    "between": gettext_lazy("介于"),
}


def _macro_choices() -> list[tuple[str, Any]]:
    return [(name, name) for name in MACRO_REGIONS]


FIELDS: dict[str, Field] = {
    "kind": Field(
        gettext_lazy("客户类型"), IN_OPS, "choice", lambda: Customer.Kind.choices
    ),
    "tier": Field(
        gettext_lazy("价值等级"), IN_OPS, "choice", lambda: Customer.Tier.choices
    ),
    "stage": Field(
        gettext_lazy("客户阶段"), IN_OPS, "choice", lambda: Customer.Stage.choices
    ),
    "source": Field(
        gettext_lazy("来源渠道"), IN_OPS, "choice", lambda: Customer.Source.choices
    ),
    "macro_region": Field(gettext_lazy("大区"), IN_OPS, "choice", _macro_choices),
    "province": Field(gettext_lazy("省份"), IN_OPS, "text"),
    "city": Field(gettext_lazy("城市"), IN_OPS, "text"),
    "tags": Field(
        gettext_lazy("标签"),
        {
            "has_any": gettext_lazy("含任一"),
            "has_all": gettext_lazy("全部包含"),
            "has_none": gettext_lazy("都不含"),
        },
        "text",
    ),
    "owner": Field(
        gettext_lazy("负责人"),
        {**IN_OPS, "is_empty": gettext_lazy("为空（公海）")},
        "user",
    ),
    "team": Field(
        gettext_lazy("团队"),
        {**IN_OPS, "is_empty": gettext_lazy("为空")},
        "team",
    ),
    "last_contact": Field(
        gettext_lazy("距上次联系天数"),
        {
            "gt": gettext_lazy("大于"),
            "lt": gettext_lazy("小于"),
            "between": gettext_lazy("介于"),
            "never": gettext_lazy("从未联系"),
        },
        "days",
    ),
    "tickets": Field(gettext_lazy("近期工单"), COUNT_OPS, "tickets"),
    "complaints": Field(gettext_lazy("近期投诉"), COUNT_OPS, "tickets"),
    "revenue": Field(gettext_lazy("回款额（终端客户）"), MONEY_OPS, "money"),
    "channel_revenue": Field(gettext_lazy("回款额（经销渠道）"), MONEY_OPS, "money"),
    "open_deals": Field(
        gettext_lazy("进行中商机"),
        {
            "count_gte": gettext_lazy("个数 ≥"),
            "amount_gte": gettext_lazy("金额 ≥"),
        },
        "deals",
    ),
    "handover": Field(
        gettext_lazy("入伙"),
        {
            "booked": gettext_lazy("已预约"),
            "checked_in": gettext_lazy("已签到"),
            "not_booked": gettext_lazy("未预约"),
        },
        "handover",
    ),
}


# --- validation -------------------------------------------------------------------------


class _Errors:
    def __init__(self) -> None:
        self.messages: list[str] = []
        self.number = 0


def _fail(position: int, message: str) -> ValidationError:
    return ValidationError(
        _("第 %(n)s 条规则：%(message)s") % {"n": position, "message": message},
        code="invalid_rule",
    )


def _int(value: Any, *, low: int, high: int, what: str, position: int) -> int:
    if value is None or str(value).strip() == "":
        raise _fail(position, _("请填写%(what)s。") % {"what": what})
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise _fail(position, _("%(what)s须为整数。") % {"what": what}) from None
    if not low <= number <= high:
        raise _fail(
            position,
            _("%(what)s须在 %(low)s 至 %(high)s 之间。")
            % {"what": what, "low": low, "high": high},
        )
    return number


def _money(value: Any, *, what: str, position: int) -> str:
    if value is None or str(value).strip() == "":
        raise _fail(position, _("请填写%(what)s。") % {"what": what})
    try:
        amount = Decimal(str(value).strip().replace(",", ""))
    except (InvalidOperation, TypeError, ValueError):
        raise _fail(position, _("%(what)s须为金额（元）。") % {"what": what}) from None
    if not amount.is_finite() or not Decimal(0) <= amount <= MAX_AMOUNT:
        raise _fail(
            position,
            _("%(what)s须在 0 至 %(max)s 元之间。") % {"what": what, "max": MAX_AMOUNT},
        )
    return str(amount.quantize(Decimal("0.01")))


def _date(value: Any, *, what: str, position: int) -> str:
    try:
        day = dt.date.fromisoformat(str(value).strip())
    except (TypeError, ValueError):
        raise _fail(
            position, _("%(what)s须为日期（如 2026-01-31）。") % {"what": what}
        ) from None
    if not bounds.BUSINESS_DATE_MIN <= day <= bounds.BUSINESS_DATE_MAX:
        raise _fail(position, _("%(what)s超出范围。") % {"what": what})
    return day.isoformat()


def _as_dict(value: Any, position: int) -> dict:
    if not isinstance(value, dict):
        raise _fail(position, _("取值格式不正确。"))
    return value


def _list(value: Any, position: int) -> list:
    if isinstance(value, str):
        value = [part for part in value.replace("，", ",").split(",")]
    if not isinstance(value, list | tuple):
        raise _fail(position, _("取值须为列表。"))
    items = []
    for item in value:
        text = str(item).strip()
        if text and text not in items:
            items.append(text)
    if not items:
        raise _fail(position, _("请至少填写或选择一项。"))
    if len(items) > MAX_LIST:
        raise _fail(position, _("最多 %(n)s 项。") % {"n": MAX_LIST})
    return items


def _period(value: dict, position: int) -> dict:
    """Last N days, or a from/to date range."""
    if value.get("from") or value.get("to"):
        start = _date(value.get("from"), what=_("开始日期"), position=position)
        end = _date(value.get("to"), what=_("结束日期"), position=position)
        if start > end:
            raise _fail(position, _("开始日期不能晚于结束日期。"))
        return {"from": start, "to": end}
    return {
        "days": _int(
            value.get("days"), low=1, high=MAX_DAYS, what=_("天数"), position=position
        )
    }


def _clean_value(field: str, operator: str, value: Any, position: int) -> Any:
    spec = FIELDS[field]
    if spec.kind == "choice":
        codes = {code for code, _label in spec.choices()}
        items = _list(value, position)
        unknown = [item for item in items if item not in codes]
        if unknown:
            raise _fail(position, _("未知的取值：%(v)s。") % {"v": "、".join(unknown)})
        return items
    if spec.kind == "text":
        items = _list(value, position)
        if any(len(item) > TEXT_MAX for item in items):
            raise _fail(position, _("每项最多 %(n)s 个字。") % {"n": TEXT_MAX})
        return items
    if spec.kind in ("user", "team"):
        if operator == "is_empty":
            return None
        ids = [
            _int(item, low=1, high=bounds.INT_MAX, what=_("编号"), position=position)
            for item in _list(value, position)
        ]
        from django.contrib.auth import get_user_model

        from crm.accounts.models import Team

        model = get_user_model() if spec.kind == "user" else Team
        if model.objects.filter(pk__in=ids).count() != len(set(ids)):
            raise _fail(
                position,
                _("所选负责人不存在。")
                if spec.kind == "user"
                else _("所选团队不存在。"),
            )
        return ids
    if spec.kind == "days":
        if operator == "never":
            return None
        if operator == "between":
            value = _as_dict(value, position)
            low = _int(
                value.get("min"),
                low=0,
                high=MAX_DAYS,
                what=_("天数"),
                position=position,
            )
            high = _int(
                value.get("max"),
                low=0,
                high=MAX_DAYS,
                what=_("天数"),
                position=position,
            )
            if low > high:
                raise _fail(position, _("最小天数不能大于最大天数。"))
            return {"min": low, "max": high}
        return _int(value, low=0, high=MAX_DAYS, what=_("天数"), position=position)
    if spec.kind == "tickets":
        value = _as_dict(value, position)
        days = _int(
            value.get("days"), low=1, high=MAX_DAYS, what=_("天数"), position=position
        )
        if operator == "none":
            return {"days": days}
        count = _int(
            value.get("count"), low=1, high=MAX_COUNT, what=_("次数"), position=position
        )
        return {"days": days, "count": count}
    if spec.kind == "money":
        value = _as_dict(value, position)
        cleaned = _period(value, position)
        if operator == "between":
            low = _money(value.get("min"), what=_("最小金额"), position=position)
            high = _money(value.get("max"), what=_("最大金额"), position=position)
            if Decimal(low) > Decimal(high):
                raise _fail(position, _("最小金额不能大于最大金额。"))
            cleaned.update(min=low, max=high)
        else:
            cleaned["amount"] = _money(
                value.get("amount"), what=_("金额"), position=position
            )
        return cleaned
    if spec.kind == "deals":
        if operator == "count_gte":
            return _int(value, low=1, high=MAX_COUNT, what=_("个数"), position=position)
        return _money(value, what=_("金额"), position=position)
    if spec.kind == "handover":
        value = _as_dict(value or {}, position)
        event = value.get("event")
        if event in (None, ""):
            return {"event": None}
        pk = _int(
            event, low=1, high=bounds.INT_MAX, what=_("入伙活动"), position=position
        )
        if not HandoverEvent.objects.filter(pk=pk).exists():
            raise _fail(position, _("所选入伙活动不存在。"))
        return {"event": pk}
    raise _fail(position, _("未知的字段。"))  # pragma: no cover - FIELDS is closed


def validate(tree: Any) -> dict:
    """The normalised tree, or ValidationError (a Chinese message naming the rule)."""
    counter = _Errors()

    def group(node: Any, depth: int) -> dict:
        if not isinstance(node, dict) or node.get("op") not in ("and", "or"):
            raise ValidationError(
                _("规则组须为“全部满足”或“任一满足”。"), code="invalid"
            )
        if depth > MAX_DEPTH:
            raise ValidationError(
                _("规则组最多嵌套 %(n)s 层。") % {"n": MAX_DEPTH}, code="too_deep"
            )
        children = node.get("rules")
        if not isinstance(children, list):
            raise ValidationError(_("规则组格式不正确。"), code="invalid")
        cleaned = []
        for child in children:
            if isinstance(child, dict) and "op" in child:
                sub = group(child, depth + 1)
                if sub["rules"]:
                    cleaned.append(sub)
            else:
                cleaned.append(rule(child))
        return {"op": node["op"], "rules": cleaned}

    def rule(node: Any) -> dict:
        counter.number += 1
        position = counter.number
        if counter.number > MAX_RULES:
            raise ValidationError(
                _("最多 %(n)s 条规则。") % {"n": MAX_RULES}, code="too_many"
            )
        if not isinstance(node, dict):
            raise _fail(position, _("格式不正确。"))
        field = node.get("field")
        if field not in FIELDS:
            raise _fail(position, _("未知的字段“%(f)s”。") % {"f": str(field)[:30]})
        operator = node.get("operator")
        if operator not in FIELDS[field].operators:
            raise _fail(
                position,
                _("“%(field)s”不支持条件“%(op)s”。")
                % {"field": FIELDS[field].label, "op": str(operator)[:30]},
            )
        value = _clean_value(field, operator, node.get("value"), position)
        return {"field": field, "operator": operator, "value": value}

    cleaned = group(tree, 1)
    if not cleaned["rules"]:
        raise ValidationError(_("请至少添加一条规则。"), code="empty")
    return cleaned


# --- compilation ------------------------------------------------------------------------


def _since(days: int, now: dt.datetime) -> dt.datetime:
    return now - dt.timedelta(days=days)


def _date_range(period: dict, now: dt.datetime) -> tuple[dt.date, dt.date]:
    if "days" in period:
        today = timezone.localdate(now)
        return today - dt.timedelta(days=period["days"] - 1), today
    return dt.date.fromisoformat(period["from"]), dt.date.fromisoformat(period["to"])


def _in(field: str, values: list, negate: bool) -> Q:
    condition = Q(**{f"{field}__in": values})
    return ~condition if negate else condition


def _tickets(value: dict, now: dt.datetime, complaints: bool, operator: str) -> Q:
    tickets = Ticket.objects.filter(created_at__gte=_since(value["days"], now))
    if complaints:
        tickets = tickets.filter(ticket_type=TicketType.COMPLAINT)
    if operator == "none":
        return Q(~Exists(tickets.filter(customer=OuterRef("pk"))))
    if value["count"] == 1:
        return Q(Exists(tickets.filter(customer=OuterRef("pk"))))
    heavy = (
        tickets.values("customer")
        .annotate(n=Count("pk"))
        .filter(n__gte=value["count"])
        .values("customer")
    )
    return Q(pk__in=heavy)


def _revenue(value: dict, now: dt.datetime, operator: str, column: str) -> Q:
    start, end = _date_range(value, now)
    payments = Payment.objects.filter(received_on__gte=start, received_on__lte=end)
    if column == "channel":
        payments = payments.filter(channel__isnull=False)
    totals = payments.values(column).annotate(total=Sum("amount"))
    if operator == "gte":
        amount = Decimal(value["amount"])
        if amount <= 0:
            return Q()
        return Q(pk__in=totals.filter(total__gte=amount).values(column))
    if operator == "lte":
        # Customers with no payment at all have revenue 0, which is ≤ any amount.
        return ~Q(
            pk__in=totals.filter(total__gt=Decimal(value["amount"])).values(column)
        )
    low, high = Decimal(value["min"]), Decimal(value["max"])
    if low <= 0:
        return ~Q(pk__in=totals.filter(total__gt=high).values(column))
    return Q(pk__in=totals.filter(total__gte=low, total__lte=high).values(column))


def _rule_q(rule: dict, now: dt.datetime) -> Q:
    field, operator, value = rule["field"], rule["operator"], rule["value"]
    negate = operator == "not_in"
    if field in ("kind", "tier", "stage", "source", "province", "city"):
        return _in(field, value, negate)
    if field == "macro_region":
        provinces = [name for macro in value for name in provinces_of(macro)]
        return _in("province", provinces, negate)
    if field == "tags":
        if operator == "has_any":
            return Q(tags__overlap=value)
        if operator == "has_all":
            return Q(tags__contains=value)
        return ~Q(tags__overlap=value)
    if field in ("owner", "team"):
        if operator == "is_empty":
            return Q(**{f"{field}__isnull": True})
        condition = Q(**{f"{field}_id__in": value})
        # NOT IN must keep the customers that have nobody (NULL is not "not in").
        return ~condition | Q(**{f"{field}__isnull": True}) if negate else condition
    if field == "last_contact":
        if operator == "never":
            return Q(last_contacted_at__isnull=True)
        if operator == "gt":
            cutoff = _since(value, now)
            # Never contacted counts as "long ago" once the customer is that old, as
            # in the customer list's 未联系天数 filter.
            return Q(last_contacted_at__lt=cutoff) | Q(
                last_contacted_at__isnull=True, created_at__lt=cutoff
            )
        if operator == "lt":
            return Q(last_contacted_at__gt=_since(value, now))
        return Q(
            last_contacted_at__gte=_since(value["max"], now),
            last_contacted_at__lte=_since(value["min"], now),
        )
    if field in ("tickets", "complaints"):
        return _tickets(value, now, field == "complaints", operator)
    if field in ("revenue", "channel_revenue"):
        column = "customer" if field == "revenue" else "channel"
        return _revenue(value, now, operator, column)
    if field == "open_deals":
        deals = Deal.objects.filter(status=Deal.Status.OPEN).values("customer")
        if operator == "count_gte":
            if value == 1:
                return Q(
                    Exists(Deal.objects.filter(status="open", customer=OuterRef("pk")))
                )
            heavy = deals.annotate(n=Count("pk")).filter(n__gte=value)
        else:
            heavy = deals.annotate(total=Sum("amount")).filter(
                total__gte=Decimal(value)
            )
        return Q(pk__in=heavy.values("customer"))
    if field == "handover":
        appointments = Appointment.objects.filter(customer=OuterRef("pk"))
        if value["event"]:
            appointments = appointments.filter(event_id=value["event"])
        if operator == "checked_in":
            return Q(Exists(appointments.filter(state=Appointment.State.CHECKED_IN)))
        active = appointments.filter(state__in=Appointment.ACTIVE_STATES)
        if operator == "booked":
            return Q(Exists(active))
        return Q(~Exists(active))
    raise ValueError(field)  # pragma: no cover - validate() lets no other through


def compile_q(tree: dict, *, now: dt.datetime | None = None) -> Q:
    """One Q over Customer for a tree that validate() returned."""
    now = now or timezone.now()
    parts = [
        compile_q(node, now=now) if "op" in node else _rule_q(node, now)
        for node in tree["rules"]
    ]
    combined = Q()
    for part in parts:
        combined = combined & part if tree["op"] == "and" else combined | part
    return combined


def customers_matching(tree: dict, *, now: dt.datetime | None = None) -> Any:
    """Every current (not merged) customer the validated tree selects, as a QuerySet."""
    return Customer.objects.filter(merged_into__isnull=True).filter(
        compile_q(tree, now=now)
    )


# --- in words ---------------------------------------------------------------------------


def _words(rule: dict, labels: dict) -> str:
    spec = FIELDS[rule["field"]]
    op = str(spec.operators[rule["operator"]])
    value = rule["value"]
    if spec.kind == "choice":
        names = dict(spec.choices())
        shown = "、".join(str(names.get(v, v)) for v in value)
    elif spec.kind == "text":
        shown = "、".join(value)
    elif spec.kind in ("user", "team"):
        shown = "、".join(labels.get((spec.kind, pk), f"#{pk}") for pk in value or [])
    elif spec.kind == "days":
        if isinstance(value, dict):
            shown = _("%(min)s–%(max)s 天") % value
        elif value is None:
            shown = ""
        else:
            shown = _("%(n)s 天") % {"n": value}
    elif spec.kind == "tickets":
        what = _("投诉") if rule["field"] == "complaints" else _("工单")
        if "count" in value:
            return _("近 %(days)s 天%(what)s ≥ %(count)s 次") % {**value, "what": what}
        return _("近 %(days)s 天没有%(what)s") % {**value, "what": what}
    elif spec.kind == "money":
        period = (
            _("近 %(days)s 天") % value
            if "days" in value
            else _("%(from)s 至 %(to)s") % value
        )
        amount = (
            _("%(min)s–%(max)s 元") % value
            if "min" in value
            else _("%(amount)s 元") % value
        )
        return f"{spec.label}（{period}）{op} {amount}"
    elif spec.kind == "deals":
        shown = str(value) + (_(" 元") if rule["operator"] == "amount_gte" else "")
    elif spec.kind == "handover":
        shown = (
            labels.get(("event", value["event"]), "")
            if value["event"]
            else _("任一活动")
        )
    else:  # pragma: no cover
        shown = str(value)
    return f"{spec.label} {op} {shown}".strip()


def describe(tree: dict) -> str:
    """The definition in words, e.g. 客户类型 属于 经销商 且 大区 属于 华东."""
    from django.contrib.auth import get_user_model

    from crm.accounts.models import Team

    ids: dict[str, set] = {"user": set(), "team": set(), "event": set()}

    def collect(node: dict) -> None:
        for child in node.get("rules", []):
            if "op" in child:
                collect(child)
            elif FIELDS[child["field"]].kind in ("user", "team"):
                ids[FIELDS[child["field"]].kind].update(child["value"] or [])
            elif child["field"] == "handover" and child["value"]["event"]:
                ids["event"].add(child["value"]["event"])

    collect(tree)
    labels: dict = {}
    if ids["user"]:
        for user in get_user_model().objects.filter(pk__in=ids["user"]):
            labels[("user", user.pk)] = str(user)
    if ids["team"]:
        for team in Team.objects.filter(pk__in=ids["team"]):
            labels[("team", team.pk)] = str(team)
    if ids["event"]:
        for event in HandoverEvent.objects.filter(pk__in=ids["event"]):
            labels[("event", event.pk)] = str(event)

    def words(node: dict, top: bool) -> str:
        joiner = _(" 且 ") if node["op"] == "and" else _(" 或 ")
        text = joiner.join(
            words(child, False) if "op" in child else _words(child, labels)
            for child in node["rules"]
        )
        return text if top or len(node["rules"]) < 2 else f"（{text}）"

    return words(tree, True) if tree.get("rules") else ""
