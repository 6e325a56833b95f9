"""Historical deals from CSV/XLSX, through the customer import's machinery
(customers/imports.py: reading, header mapping, preview of rows with reasons,
confirmation, chunked idempotent execution by a task, expiry, report). This module
adds only what is particular to deals: the columns, the row checks and the import of
a chunk, registered as the "deals" ImportKind in DealsConfig.ready().

A row names its customer by 客户电话 (an existing customer the importer may see; a
different 客户名称 is only a warning), optionally a 渠道 (by phone or exact name, a
dealer/distributor/agent/wholesaler/partner), the deal (商机名称, 产品/房号, 金额, 阶段 by
name or code, 负责人 by username, 预计成交日期, 成交日期) and optionally one payment
(回款金额 + 回款日期). Each row is checked by culture.deals.builder as the form is, and
imported through services.deal_create and services.payment_add, so the totals and
lifetime values stay right. A row whose customer already has a deal with the same
name and amount is refused, so a file uploaded twice imports nothing twice.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from culture.deals import builder, selectors, services
from culture.deals.models import Deal, DealStage
from customers import imports, phones
from customers.models import Customer, ImportJob, ImportRow

KIND = "deals"
COLUMNS: dict[str, tuple[str, ...]] = {
    "customer_name": ("客户名称", "客户", "客户姓名", "customer"),
    "customer_phone": ("客户电话", "电话", "手机", "联系电话", "phone"),
    "channel": ("渠道", "经销商", "代理商", "channel"),
    "title": ("商机名称", "商机", "title"),
    "product": ("产品/房号", "产品", "房号", "product"),
    "amount": ("金额", "成交金额", "商机金额", "amount"),
    "stage": ("阶段", "商机阶段", "stage"),
    "owner": ("负责人", "owner"),
    "expected_close_on": ("预计成交日期", "expected_close_on"),
    "closed_on": ("成交日期", "实际成交日期", "closed_on"),
    "paid_amount": ("回款金额", "paid_amount"),
    "paid_on": ("回款日期", "paid_on"),
}
REQUIRED = (
    (
        "customer_phone",
        gettext_lazy("第一行没有找到“客户电话”列。请使用导入模板中的表头。"),
    ),
    ("title", gettext_lazy("第一行没有找到“商机名称”列。请使用导入模板中的表头。")),
    ("amount", gettext_lazy("第一行没有找到“金额”列。请使用导入模板中的表头。")),
)
TEMPLATE_HEADERS = [
    ("客户名称", gettext_lazy("核对用；按客户电话匹配现有客户")),
    ("客户电话", gettext_lazy("必填；须是您可见的现有客户")),
    ("渠道", gettext_lazy("可选；经销商、分销商、代理商等客户的电话或全称")),
    ("商机名称", gettext_lazy("必填")),
    ("产品/房号", ""),
    ("金额", gettext_lazy("必填；元")),
    ("阶段", gettext_lazy("来访、认筹、认购、签约、回款；留空为第一个阶段")),
    ("负责人", gettext_lazy("用户名；留空为导入人")),
    ("预计成交日期", gettext_lazy("如 2026-06-30")),
    ("成交日期", gettext_lazy("成交阶段的签约日期；留空为导入当天")),
    ("回款金额", gettext_lazy("可选；与回款日期一起填写")),
    ("回款日期", ""),
]
TEMPLATE_EXAMPLE = [
    "张三",
    "13800138000",
    "",
    "3号楼1201",
    "3-1201",
    "2860000",
    "签约",
    "",
    "",
    "2025-05-01",
    "860000",
    "2025-05-20",
]
DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y年%m月%d日", "%Y-%m-%d %H:%M")


def _date(raw: str, label: str, errors: list[str]) -> dt.date | None:
    if not raw:
        return None
    for pattern in DATE_FORMATS:
        try:
            return dt.datetime.strptime(raw, pattern).date()
        except ValueError:
            continue
    errors.append(
        _("%(label)s“%(value)s”不是有效日期。") % {"label": label, "value": raw}
    )
    return None


def _amount(raw: str, label: str, errors: list[str]) -> Decimal | None:
    text = re.sub(r"[,，¥￥元\s]", "", raw)
    if not text:
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        errors.append(
            _("%(label)s“%(value)s”不是有效金额。") % {"label": label, "value": raw}
        )
        return None


def _normalised_phone(raw: str) -> str:
    try:
        number, _kind = phones.normalise_phone(raw)
    except ValidationError:
        return ""
    return number


class DealRowChecker:
    """Validates rows batch by batch (one query per lookup per batch)."""

    def __init__(self, *, by: Any, fields: dict[int, str]) -> None:
        self.by = by
        self.fields = fields
        self.owners = {
            u.username.lower(): u
            for u in selectors.owner_choices(user=by).select_related("team")
        }
        self.stages: dict[str, DealStage] = {}
        for stage in DealStage.objects.filter(is_active=True):
            self.stages[stage.name.lower()] = stage
            self.stages[stage.code.lower()] = stage
        self.first_stage = (
            DealStage.objects.filter(is_active=True).order_by("position", "id").first()
        )
        self.seen: dict[tuple, int] = {}

    def check(self, batch: list[tuple[int, list[str]]]) -> list[ImportRow]:
        values = [
            (
                line,
                {
                    name: cells[index].strip() if index < len(cells) else ""
                    for index, name in self.fields.items()
                },
            )
            for line, cells in batch
        ]
        customers = self._customers_by_phone(
            {_normalised_phone(v.get("customer_phone", "")) for _l, v in values}
            | {_normalised_phone(v.get("channel", "")) for _l, v in values}
        )
        channel_names = self._channels_by_name(
            {v.get("channel", "") for _l, v in values}
        )
        existing = self._existing(
            [c.pk for c in customers.values()], {v.get("title", "") for _l, v in values}
        )
        return [
            self._row(line, v, customers, channel_names, existing) for line, v in values
        ]

    def _customers_by_phone(self, numbers: set[str]) -> dict[str, Customer]:
        holders = dict(
            (number, pk) for number, (pk, _name) in imports.held_phones(numbers - {""})
        )
        visible = (
            Customer.objects.visible_to(self.by)
            .filter(pk__in=set(holders.values()), merged_into__isnull=True)
            .in_bulk()
        )
        return {n: visible[pk] for n, pk in holders.items() if pk in visible}

    def _channels_by_name(self, names: set[str]) -> dict[str, list[Customer]]:
        found: dict[str, list[Customer]] = {}
        for customer in Customer.objects.visible_to(self.by).filter(
            name__in=names - {""},
            kind__in=builder.CHANNEL_KINDS,
            merged_into__isnull=True,
        )[:1000]:
            found.setdefault(customer.name, []).append(customer)
        return found

    @staticmethod
    def _existing(customer_ids: list[int], titles: set[str]) -> set[tuple]:
        rows = Deal.objects.filter(
            customer_id__in=customer_ids, title__in=titles - {""}
        ).values_list("customer_id", "title", "amount")
        return {(c, t, Decimal(a)) for c, t, a in rows}

    def _row(
        self,
        line: int,
        v: dict[str, str],
        customers: dict[str, Customer],
        channel_names: dict[str, list[Customer]],
        existing: set[tuple],
    ) -> ImportRow:
        errors: list[str] = []
        warnings: list[str] = []
        phone = _normalised_phone(v.get("customer_phone", ""))
        customer = customers.get(phone)
        if not v.get("customer_phone"):
            errors.append(_("缺少客户电话。"))
        elif customer is None:
            errors.append(
                _("没有找到电话为 %(phone)s 的客户（或不在您的范围内）。")
                % {"phone": v["customer_phone"]}
            )
        elif v.get("customer_name") and v["customer_name"] != customer.name:
            warnings.append(
                _("客户名称“%(given)s”与系统中的“%(name)s”不同，已按电话匹配。")
                % {"given": v["customer_name"], "name": customer.name}
            )
        channel = None
        raw_channel = v.get("channel", "")
        if raw_channel:
            channel = customers.get(_normalised_phone(raw_channel))
            if channel is None:
                named = channel_names.get(raw_channel, [])
                if len(named) == 1:
                    channel = named[0]
                else:
                    errors.append(
                        _("渠道“%(value)s”没有找到唯一的经销商、分销商或代理商。")
                        % {"value": raw_channel}
                    )
        stage = self.first_stage
        if v.get("stage"):
            stage = self.stages.get(v["stage"].lower())
            if stage is None:
                errors.append(
                    _("阶段“%(value)s”不存在或已停用。") % {"value": v["stage"]}
                )
        owner = self.by
        if v.get("owner"):
            owner = self.owners.get(v["owner"].lower())
            if owner is None:
                errors.append(
                    _("负责人“%(name)s”不存在或不在您的管理范围内。")
                    % {"name": v["owner"]}
                )
        amount = _amount(v.get("amount", ""), _("金额"), errors)
        if amount is None and not errors:
            errors.append(_("缺少金额。"))
        expected = _date(v.get("expected_close_on", ""), _("预计成交日期"), errors)
        closed = _date(v.get("closed_on", ""), _("成交日期"), errors)
        paid = _amount(v.get("paid_amount", ""), _("回款金额"), errors)
        paid_on = _date(v.get("paid_on", ""), _("回款日期"), errors)
        if (paid is None) != (paid_on is None) and not errors:
            errors.append(_("回款金额和回款日期须同时填写。"))
        data: dict[str, Any] = {}
        if not errors:
            fields = {
                "title": v.get("title", ""),
                "product": v.get("product", ""),
                "amount": amount,
                "channel": channel,
                "expected_close_on": expected,
            }
            try:
                deal = builder.build(
                    customer=customer,
                    owner=owner,
                    stage=stage,
                    data=fields,
                    closed_on=closed,
                )
                if paid is not None:
                    builder.payment(deal=deal, amount=paid, received_on=paid_on)
            except ValidationError as error:
                errors.extend(error.messages)
            else:
                key = (customer.pk, deal.title, deal.amount)
                if key in existing:
                    errors.append(_("该客户已有同名同金额的商机，不再导入。"))
                elif key in self.seen:
                    errors.append(
                        _("与第 %(line)d 行重复。") % {"line": self.seen[key]}
                    )
                else:
                    self.seen[key] = line
                    data = {
                        "customer_id": customer.pk,
                        "channel_id": channel.pk if channel else None,
                        "stage_id": stage.pk,
                        "owner_id": owner.pk,
                        "owner_label": owner.username,
                        "title": deal.title,
                        "product": deal.product,
                        "amount": str(deal.amount),
                        "expected_close_on": expected.isoformat() if expected else None,
                        "closed_on": closed.isoformat() if closed else None,
                        "paid_amount": str(paid) if paid is not None else None,
                        "paid_on": paid_on.isoformat() if paid_on else None,
                    }
        return ImportRow(
            line=line,
            status=ImportRow.Status.INVALID if errors else ImportRow.Status.VALID,
            name=(v.get("title") or v.get("customer_name", ""))[:200],
            phone=v.get("customer_phone", "")[:60],
            data=data,
            errors=errors,
            warnings=warnings,
        )


def _day(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


def import_rows(job: ImportJob, rows: list[ImportRow], by: Any) -> None:
    """Import locked VALID rows (inside the chunk's transaction) through the services;
    a row refused now (a customer merged, a stage deactivated since the preview) is
    skipped with the service's reason."""
    customers = Customer.objects.in_bulk(
        {r.data["customer_id"] for r in rows}
        | {r.data["channel_id"] for r in rows if r.data.get("channel_id")}
    )
    stages = DealStage.objects.in_bulk({r.data["stage_id"] for r in rows})
    owners = (
        get_user_model()
        .objects.select_related("team")
        .in_bulk({r.data["owner_id"] for r in rows})
    )
    imported = skipped = 0
    for row in rows:
        d = row.data
        customer = customers.get(d["customer_id"])
        try:
            with transaction.atomic():
                if customer is None or d["stage_id"] not in stages:
                    raise ValidationError(_("客户或阶段已不存在。"))
                deal = services.deal_create(
                    by=by,
                    customer=customer,
                    owner=owners.get(d["owner_id"], by),
                    stage=stages[d["stage_id"]],
                    closed_on=_day(d.get("closed_on")),
                    data={
                        "title": d["title"],
                        "product": d["product"],
                        "amount": Decimal(d["amount"]),
                        "channel": customers.get(d["channel_id"])
                        if d.get("channel_id")
                        else None,
                        "expected_close_on": _day(d.get("expected_close_on")),
                    },
                )
                if d.get("paid_amount"):
                    services.payment_add(
                        by=by,
                        deal=deal,
                        amount=Decimal(d["paid_amount"]),
                        received_on=_day(d["paid_on"]),
                        note=_("历史导入"),
                    )
        except ValidationError as error:
            row.status = ImportRow.Status.SKIPPED
            row.errors = error.messages
            skipped += 1
        else:
            row.status = ImportRow.Status.IMPORTED
            row.customer = customer
            imported += 1
        row.save(update_fields=["status", "errors", "customer"])
    ImportJob.objects.filter(pk=job.pk).update(
        imported_rows=F("imported_rows") + imported,
        skipped_rows=F("skipped_rows") + skipped,
    )


DEALS = imports.ImportKind(
    key=KIND,
    label=gettext_lazy("商机"),
    perm="deals.import_deal",
    create_perm="deals.add_deal",
    columns=COLUMNS,
    required=REQUIRED,
    checker=DealRowChecker,
    import_rows=import_rows,
    template_headers=TEMPLATE_HEADERS,
    template_example=TEMPLATE_EXAMPLE,
    upload_url="deals:import_upload",
    list_url="deals:deal_list",
    owner_note=gettext_lazy(
        "负责人：表中填写的用户名须是您管理范围内的销售或经理，留空由您负责；"
        "客户按电话匹配您可见的现有客户。"
    ),
)
