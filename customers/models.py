from __future__ import annotations

import pghistory
from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import models
from django.db.models import F
from django.db.models.functions import Upper
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from crm.accounts import access
from crm.accounts.roles import Role
from crm.core import bounds, db


class CustomerQuerySet(models.QuerySet):
    def visible_to(self, user: settings.AUTH_USER_MODEL) -> CustomerQuerySet:
        customers = access.filter_visible(self, user)
        # Unverified contacts (the desk's callers, /report/) are the desk's: sales
        # never see them, whatever their scope, until an agent verifies them.
        if getattr(user, "role", None) == Role.SALES:
            customers = customers.filter(is_verified=True)
        return customers

    def in_pool(self) -> CustomerQuerySet:
        """The public pool (公海): nobody's verified customers."""
        return self.filter(owner__isnull=True, is_verified=True)

    def unverified(self) -> CustomerQuerySet:
        return self.filter(is_verified=False)


class NameGrams(models.Func):
    """Every 1- and 2-character piece of the lower-cased name (SQL function in 0002).

    A GIN index on these serves Chinese searches of one or two characters, which a
    trigram index cannot (pg_trgm needs three characters to use its index).
    """

    function = "kehu_name_grams"
    output_field = ArrayField(models.TextField())


# Every create, update and delete of a customer is recorded with who and what changed.
# Inserts are recorded per statement (db.StatementInsertEvent): the same event rows.
@pghistory.track(
    db.StatementInsertEvent(),
    pghistory.UpdateEvent(),
    pghistory.DeleteEvent(),
    exclude=[
        "version",
        "updated_at",
        "name_grams",
        "name_pinyin",
        "name_initials",
        "id_number_cipher",
        "id_number_index",
        "last_contacted_at",
        "contact_count",
    ],
)
class Customer(models.Model):
    class Kind(models.TextChoices):
        OWNER = "owner", _("业主")
        ENTERPRISE = "enterprise", _("企业")
        DISTRIBUTOR = "distributor", _("分销商")
        DEALER = "dealer", _("经销商")
        WHOLESALER = "wholesaler", _("批发商")
        AGENT = "agent", _("代理商")
        PARTNER = "partner", _("合作伙伴")

    class Stage(models.TextChoices):
        LEAD = "lead", _("潜在")
        PROSPECT = "prospect", _("意向")
        CUSTOMER = "customer", _("成交")
        DORMANT = "dormant", _("沉睡")
        LOST = "lost", _("流失")

    class Tier(models.TextChoices):
        A = "A", "A"
        B = "B", "B"
        C = "C", "C"
        D = "D", "D"

    class Source(models.TextChoices):
        WALK_IN = "walk_in", _("到访")
        REFERRAL = "referral", _("老带新")
        ONLINE = "online", _("线上")
        PHONE = "phone", _("来电")
        EXHIBITION = "exhibition", _("展会")
        CHANNEL = "channel", _("渠道")
        OTHER = "other", _("其他")

    name = models.CharField(_("名称"), max_length=100)
    is_organization = models.BooleanField(_("是机构"), default=False)
    kind = models.CharField(_("类型"), max_length=20, choices=Kind, default=Kind.OWNER)
    stage = models.CharField(
        _("阶段"), max_length=20, choices=Stage, default=Stage.LEAD
    )
    tier = models.CharField(_("价值等级"), max_length=1, choices=Tier, default=Tier.C)
    is_key_account = models.BooleanField(_("重点客户"), default=False)
    source = models.CharField(
        _("来源渠道"), max_length=20, choices=Source, default=Source.OTHER
    )
    tags = ArrayField(
        models.CharField(max_length=30),
        verbose_name=_("标签"),
        default=list,
        blank=True,
    )
    province = models.CharField(_("省份"), max_length=20, blank=True)
    city = models.CharField(_("城市"), max_length=30, blank=True)
    district = models.CharField(_("区县"), max_length=30, blank=True)
    address = models.CharField(_("地址"), max_length=200, blank=True)
    # The primary phone, also present in CustomerPhone (which holds the uniqueness).
    phone = models.CharField(_("电话"), max_length=20, blank=True)
    wechat_id = models.CharField(_("微信号"), max_length=50, blank=True)
    email = models.EmailField(_("邮箱"), blank=True)
    # Resident ID number: encrypted; the HMAC index makes it unique and findable.
    id_number_cipher = models.TextField(blank=True)
    # NULL, not "", when absent: the unique constraint must ignore customers without one.
    id_number_index = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    id_number_masked = models.CharField(_("身份证号"), max_length=18, blank=True)
    organization = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="members",
        verbose_name=_("所属机构"),
        limit_choices_to={"is_organization": True},
    )
    parent = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="children",
        verbose_name=_("上级机构"),
        limit_choices_to={"is_organization": True},
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="owned_customers",
        verbose_name=_("负责人"),
        # customer_owner_recent (owner first) serves every lookup by owner.
        db_index=False,
    )
    team = models.ForeignKey(
        "accounts.Team",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="customers",
        verbose_name=_("团队"),
        # customer_team_recent (team first) serves every lookup by team.
        db_index=False,
    )
    lifetime_value = models.DecimalField(
        _("累计成交额"), max_digits=14, decimal_places=2, default=0
    )
    notes = models.TextField(_("备注"), blank=True)
    last_contacted_at = models.DateTimeField(_("最近联系"), null=True, blank=True)
    contact_count = models.PositiveIntegerField(_("联系次数"), default=0)
    pool_entered_at = models.DateTimeField(_("进入公海时间"), null=True, blank=True)
    # False for a contact the service desk took (an unknown caller, the public
    # /report/ form): the desk's until an agent verifies it, then it reaches the pool.
    # db_default: the bench's SQL datasets and old rows are verified customers.
    is_verified = models.BooleanField(_("已核实"), default=True, db_default=True)
    merged_into = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("已合并到"),
    )
    # Search columns, kept in step with `name` by save() and the bulk loaders.
    name_pinyin = models.CharField(max_length=300, blank=True)
    name_initials = models.CharField(max_length=100, blank=True)
    name_grams = models.GeneratedField(
        expression=NameGrams("name"),
        output_field=ArrayField(models.TextField()),
        db_persist=True,
    )
    # Where an import found this customer: the other system's name and its id there.
    # A second import of the same file matches on the pair and updates, not duplicates.
    external_source = models.CharField(_("来源系统"), max_length=50, blank=True)
    external_id = models.CharField(  # noqa: DJ001 - NULL: the unique index skips it
        _("外部编号"), max_length=100, null=True, blank=True
    )
    # Values an import left out because they were invalid, to be checked by a person:
    # {"phone": "<as in the file>", "email": "...", "id_number": ""} (an invalid ID
    # number is not kept). Empty: nothing to review. Cleared by customer_review_clear.
    review_flags = models.JSONField(_("待核查"), default=dict, blank=True)
    # Incremented on every save through services; a stale form is refused (no lost edits).
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    objects = CustomerQuerySet.as_manager()

    class Meta:
        verbose_name = _("客户")
        verbose_name_plural = _("客户")
        permissions = [
            ("reassign_customer", _("可转移客户")),
            ("export_customer", _("可导出客户")),
            ("import_customer", _("可导入客户")),
            ("merge_customer", _("可合并客户")),
            ("reveal_customer_pii", _("可查看完整个人信息")),
            ("register_caller", _("可登记来电客户（待核实）")),
            ("verify_customer", _("可核实客户")),
        ]
        # Each list order has an index that serves it exactly, for each filter of the
        # list whose rows can be many (customers/selectors.py SORTS): `id` breaks ties,
        # so rows sharing an updated_at (a bulk reassignment, a pool return, an import)
        # never make PostgreSQL sort them, and the filter's own index walks its rows in
        # order, so the page does not depend on which rows arrived last (issue 18).
        indexes = [
            models.Index(
                fields=["owner", "-updated_at", "-id"], name="customer_owner_recent"
            ),
            models.Index(
                fields=["team", "-updated_at", "-id"], name="customer_team_recent"
            ),
            models.Index(fields=["-updated_at", "-id"], name="customer_recent"),
            models.Index(fields=["name", "id"], name="customer_name"),
            models.Index(fields=["-created_at", "-id"], name="customer_created"),
            models.Index(
                fields=["kind", "-updated_at", "-id"], name="customer_kind_recent"
            ),
            # Within a kind in every order too: persons and organisations arrive apart
            # (organisations imported first, their people after) and their names
            # start differently (a city, a surname).
            models.Index(fields=["kind", "name", "id"], name="customer_kind_name"),
            models.Index(
                fields=["kind", "-created_at", "-id"], name="customer_kind_created"
            ),
            models.Index(
                "kind",
                F("last_contacted_at").asc(nulls_first=True),
                "id",
                name="customer_kind_last_contact",
            ),
            models.Index(
                fields=["stage", "-updated_at", "-id"], name="customer_stage_recent"
            ),
            models.Index(
                fields=["tier", "-updated_at", "-id"], name="customer_tier_recent"
            ),
            models.Index(
                fields=["province", "-updated_at", "-id"],
                name="customer_province_recent",
            ),
            models.Index(
                fields=["city", "-updated_at", "-id"], name="customer_city_recent"
            ),
            models.Index(
                fields=["-updated_at", "-id"],
                name="customer_key_account_recent",
                condition=models.Q(is_key_account=True),
            ),
            models.Index(
                fields=["province", "city", "district"], name="customer_region"
            ),
            # Segments' commonest rules together (culture/segments: "A 级经销商 in
            # 华东"): one index range instead of a BitmapAnd of three large ones.
            models.Index(
                fields=["kind", "tier", "province"], name="customer_kind_tier_region"
            ),
            # The 最久未联系 order: never contacted first (also the range of the
            # 未联系天数 filter).
            models.Index(
                F("last_contacted_at").asc(nulls_first=True),
                "id",
                name="customer_last_contact",
            ),
            models.Index(
                fields=["-updated_at", "-id"],
                name="customer_pool",
                condition=models.Q(owner__isnull=True),
            ),
            models.Index(
                fields=["-created_at", "-id"],
                name="customer_unverified",
                condition=models.Q(is_verified=False),
            ),
            # The pool's filters (公海: region, kind, source), newest first.
            models.Index(
                fields=["kind", "-updated_at", "-id"],
                name="customer_pool_kind",
                condition=models.Q(owner__isnull=True),
            ),
            models.Index(
                fields=["source", "-updated_at", "-id"],
                name="customer_pool_source",
                condition=models.Q(owner__isnull=True),
            ),
            models.Index(
                fields=["province", "city", "-updated_at", "-id"],
                name="customer_pool_region",
                condition=models.Q(owner__isnull=True),
            ),
            # 待核查: the customers an import flagged, newest first.
            models.Index(
                fields=["-updated_at", "-id"],
                name="customer_needs_review",
                condition=~models.Q(review_flags={}),
            ),
            GinIndex(fields=["tags"], name="customer_tags"),
            GinIndex(fields=["name_grams"], name="customer_name_grams"),
            models.Index(
                OpClass(Upper("name_pinyin"), name="varchar_pattern_ops"),
                name="customer_pinyin_prefix",
            ),
            models.Index(
                OpClass(Upper("name_initials"), name="varchar_pattern_ops"),
                name="customer_initials_prefix",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["id_number_index"],
                name="customer_unique_id_number",
                condition=models.Q(id_number_index__isnull=False),
            ),
            models.UniqueConstraint(
                fields=["external_source", "external_id"],
                name="customer_unique_external_id",
                condition=models.Q(external_id__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: object, **kwargs: object) -> None:
        from customers import search

        self.name_pinyin, self.name_initials = search.pinyin_of(self.name)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "name" in update_fields:
            kwargs["update_fields"] = {*update_fields, "name_pinyin", "name_initials"}
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("customers:customer_detail", args=[self.pk])

    @property
    def region(self) -> str:
        return " ".join(
            part for part in (self.province, self.city, self.district) if part
        )


# Secondary phones are edited on the customer form: who added or removed which number
# is in the customer's history tab with the customer's own changes.
@pghistory.track(
    db.StatementInsertEvent(),
    pghistory.UpdateEvent(),
    pghistory.DeleteEvent(),
)
class CustomerPhone(models.Model):
    class Kind(models.TextChoices):
        MOBILE = "mobile", _("手机")
        LANDLINE = "landline", _("座机")

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="phones"
    )
    # National digits (13812345678, 01088886666): one format for uniqueness and search.
    number = models.CharField(_("号码"), max_length=20)
    kind = models.CharField(_("类型"), max_length=10, choices=Kind, default=Kind.MOBILE)
    is_primary = models.BooleanField(default=False)

    class Meta:
        verbose_name = _("电话")
        verbose_name_plural = _("电话")
        constraints = [
            # The database, not only the form, stops two customers sharing a phone.
            models.UniqueConstraint(fields=["number"], name="customer_phone_unique"),
        ]
        indexes = [
            GinIndex(
                OpClass("number", name="gin_trgm_ops"), name="customer_phone_trgm"
            ),
        ]

    def __str__(self) -> str:
        return self.number


# Audited like the customer: the history tab shows who changed which preference.
@pghistory.track(
    db.StatementInsertEvent(),
    pghistory.UpdateEvent(),
    pghistory.DeleteEvent(),
    exclude=["version", "updated_at"],
)
class CustomerProfile(models.Model):
    """The one-to-one profile (一对一定制): how this customer wants to be served."""

    class Channel(models.TextChoices):
        PHONE = "phone", _("电话")
        WECHAT = "wechat", _("微信")
        SMS = "sms", _("短信")
        EMAIL = "email", _("邮件")
        VISIT = "visit", _("上门")

    class TimeOfDay(models.TextChoices):
        ANY = "any", _("不限")
        MORNING = "morning", _("上午")
        AFTERNOON = "afternoon", _("下午")
        EVENING = "evening", _("晚上")
        WEEKEND = "weekend", _("周末")

    customer = models.OneToOneField(
        Customer, on_delete=models.CASCADE, related_name="profile", primary_key=True
    )
    preferred_channel = models.CharField(
        _("偏好渠道"), max_length=10, choices=Channel, blank=True
    )
    preferred_time = models.CharField(
        _("方便时间"), max_length=10, choices=TimeOfDay, default=TimeOfDay.ANY
    )
    language = models.CharField(_("沟通语言/方言"), max_length=30, blank=True)
    do_not_call = models.BooleanField(_("请勿来电"), default=False)
    do_not_sms = models.BooleanField(_("请勿短信"), default=False)
    do_not_visit = models.BooleanField(_("请勿上门"), default=False)
    special_needs = models.CharField(_("特殊需求"), max_length=200, blank=True)
    interests = models.CharField(_("兴趣爱好"), max_length=200, blank=True)
    family_notes = models.CharField(_("家庭情况"), max_length=200, blank=True)
    notes = models.TextField(_("其他说明"), blank=True)
    # Optimistic concurrency as on Customer: a save names the version its form read
    # (0: no profile yet), and a stale form never overwrites (services.profile_update).
    version = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    # What the profile form edits and a merge carries over.
    PREFERENCE_FIELDS = (
        "preferred_channel",
        "preferred_time",
        "language",
        "do_not_call",
        "do_not_sms",
        "do_not_visit",
        "special_needs",
        "interests",
        "family_notes",
        "notes",
    )

    class Meta:
        verbose_name = _("一对一档案")
        verbose_name_plural = _("一对一档案")

    def __str__(self) -> str:
        return str(self.customer)

    @property
    def has_content(self) -> bool:
        return bool(
            self.preferred_channel
            or self.language
            or self.do_not_call
            or self.do_not_sms
            or self.do_not_visit
            or self.special_needs
            or self.interests
            or self.family_notes
            or self.notes
            or self.preferred_time != self.TimeOfDay.ANY
        )


@pghistory.track(
    pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent()
)
class ContactLog(models.Model):
    class Channel(models.TextChoices):
        PHONE = "phone", _("电话")
        VISIT = "visit", _("拜访")
        WECHAT = "wechat", _("微信")
        SMS = "sms", _("短信")
        EMAIL = "email", _("邮件")
        MEETING = "meeting", _("会议")
        ON_SITE = "on_site", _("现场")

    class Direction(models.TextChoices):
        OUTBOUND = "out", _("我方主动")
        INBOUND = "in", _("客户主动")

    class Sentiment(models.TextChoices):
        POSITIVE = "positive", _("积极")
        NEUTRAL = "neutral", _("一般")
        NEGATIVE = "negative", _("不满")

    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        related_name="contacts",
        verbose_name=_("客户"),
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("记录人"),
    )
    channel = models.CharField(_("渠道"), max_length=10, choices=Channel)
    direction = models.CharField(
        _("方向"), max_length=3, choices=Direction, default=Direction.OUTBOUND
    )
    occurred_at = models.DateTimeField(_("联系时间"))
    summary = models.TextField(_("内容摘要"))
    outcome = models.CharField(_("结果"), max_length=200, blank=True)
    sentiment = models.CharField(
        _("客户情绪"), max_length=10, choices=Sentiment, default=Sentiment.NEUTRAL
    )
    next_step = models.CharField(_("下一步"), max_length=200, blank=True)
    next_step_at = models.DateTimeField(_("下一步时间"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("联系记录")
        verbose_name_plural = _("联系记录")
        indexes = [
            models.Index(
                fields=["customer", "-occurred_at", "-id"], name="contact_timeline"
            ),
            models.Index(
                fields=["author", "-occurred_at"], name="contact_author_recent"
            ),
        ]
        constraints = [
            bounds.datetime_in_range(
                "occurred_at", "next_step_at", name="contact_dates_in_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer} · {self.get_channel_display()}"


@pghistory.track(
    pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent()
)
class FollowUp(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", _("待跟进")
        DONE = "done", _("已完成")
        CANCELLED = "cancelled", _("已取消")

    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        related_name="followups",
        verbose_name=_("客户"),
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="followups",
        verbose_name=_("跟进人"),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
    )
    source_contact = models.ForeignKey(
        ContactLog, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    due_at = models.DateTimeField(_("到期时间"))
    note = models.CharField(_("跟进事项"), max_length=200)
    status = models.CharField(
        _("状态"), max_length=10, choices=Status, default=Status.OPEN
    )
    reminded_at = models.DateTimeField(_("已提醒"), null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("跟进")
        verbose_name_plural = _("跟进")
        indexes = [
            models.Index(
                fields=["assignee", "due_at"],
                name="followup_open_due",
                condition=models.Q(status="open"),
            ),
            models.Index(fields=["customer", "-due_at"], name="followup_customer"),
            # Follow-ups on time per person over a period, done ones included (个人指标).
            models.Index(fields=["assignee", "due_at"], name="followup_assignee_due"),
        ]
        # 0001-01-01 was stored as 0001-12-31 BC, which psycopg cannot read back:
        # every page showing it answered 500 (issue 11, finding 1).
        constraints = [bounds.datetime_in_range("due_at", name="followup_due_in_range")]

    def __str__(self) -> str:
        return self.note

    def get_absolute_url(self) -> str:
        return reverse("customers:customer_detail", args=[self.customer_id])


class PoolEvent(models.Model):
    """Who took a customer from, or gave one back to, the public pool (公海), and when."""

    class Action(models.TextChoices):
        CLAIM = "claim", _("领取")
        RELEASE = "release", _("放回公海")
        AUTO_RETURN = "auto_return", _("超期自动回收")
        REASSIGN = "reassign", _("转移")
        VERIFY = "verify", _("核实后进入公海")

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="pool_events"
    )
    # The salesperson concerned: the claimer, or the owner who lost the customer.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    action = models.CharField(max_length=20, choices=Action)
    # Why the customer went back to the pool (a release's reason, the automatic
    # return's rule), shown on the pool's list and preview.
    reason = models.CharField(_("原因"), max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("公海记录")
        verbose_name_plural = _("公海记录")
        indexes = [
            models.Index(
                fields=["user", "action", "-created_at"], name="pool_user_claims"
            ),
            models.Index(fields=["customer", "-created_at"], name="pool_customer"),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.customer_id}"


def _import_upload_path(job: ImportJob, filename: str) -> str:
    """imports/<random>.csv: the user's file name never reaches the file system."""
    import secrets
    from pathlib import PurePath

    return f"imports/{secrets.token_hex(16)}{PurePath(filename).suffix.lower()}"


class ImportJob(models.Model):
    """One uploaded CSV/XLSX file on its way in: validated, previewed, then imported.

    The rows live in ImportRow, each with its outcome, so a worker that dies mid-import
    loses nothing: the next run carries on with the rows still marked valid.
    """

    class Status(models.TextChoices):
        VALIDATING = "validating", _("校验中")
        READY = "ready", _("待确认")
        IMPORTING = "importing", _("导入中")
        DONE = "done", _("已完成")
        CANCELLED = "cancelled", _("已取消")
        FAILED = "failed", _("失败")

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        XLSX = "xlsx", "XLSX"

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("导入人"),
    )
    file = models.FileField(upload_to=_import_upload_path, blank=True)
    # Which importer reads it (customers.imports.KINDS): customers, or another app's
    # records (deals) through the same reading, preview and job machinery.
    kind = models.CharField(_("导入类型"), max_length=20, default="customers")
    original_name = models.CharField(_("文件名"), max_length=200)
    file_format = models.CharField(max_length=4, choices=Format)
    encoding = models.CharField(max_length=20, blank=True)
    status = models.CharField(
        _("状态"), max_length=12, choices=Status, default=Status.VALIDATING
    )
    total_rows = models.PositiveIntegerField(default=0)
    valid_rows = models.PositiveIntegerField(default=0)
    invalid_rows = models.PositiveIntegerField(default=0)
    imported_rows = models.PositiveIntegerField(default=0)
    skipped_rows = models.PositiveIntegerField(default=0)
    # Recognised column -> field, and the headers that were ignored.
    columns = models.JSONField(default=dict, blank=True)
    error = models.CharField(max_length=300, blank=True)
    # Chosen in the preview, per field (phone, email, id_number): "keep" imports a row
    # whose only problem is that field's invalid value, without it and flagged for
    # review; absent or "refuse": the row is refused.
    fallbacks = models.JSONField(default=dict, blank=True)
    # When the retention purge deleted the rows and file (the summary counts stay).
    purged_at = models.DateTimeField(null=True, blank=True)
    # A running task holds the job until lease_until; an expired lease may be taken over.
    lease_until = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(_("上传时间"), auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("导入任务")
        verbose_name_plural = _("导入任务")
        indexes = [
            models.Index(
                fields=["created_by", "-created_at"], name="importjob_user_recent"
            ),
        ]

    def __str__(self) -> str:
        return self.original_name

    def get_absolute_url(self) -> str:
        return reverse("customers:import_job_detail", args=[self.pk])

    @property
    def is_running(self) -> bool:
        return self.status in (self.Status.VALIDATING, self.Status.IMPORTING)

    @property
    def validated_rows(self) -> int:
        return self.valid_rows + self.invalid_rows

    @property
    def processed_rows(self) -> int:
        return self.imported_rows + self.skipped_rows

    @property
    def percent(self) -> int:
        """Progress of the current phase, 0-100."""
        if self.status == self.Status.VALIDATING:
            done, total = self.validated_rows, self.total_rows
        elif self.status == self.Status.IMPORTING:
            done, total = self.processed_rows, self.valid_rows
        else:
            return 100
        return min(100, done * 100 // total) if total else 0


class ImportRow(models.Model):
    """One data row of an import file, with what became of it."""

    class Status(models.TextChoices):
        VALID = "valid", _("待导入")
        INVALID = "invalid", _("有错误")
        IMPORTED = "imported", _("已导入")
        SKIPPED = "skipped", _("已跳过")

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="rows")
    # The spreadsheet row number (the header is row 1), as the user sees it in Excel.
    line = models.PositiveIntegerField(_("行号"))
    status = models.CharField(_("结果"), max_length=10, choices=Status)
    name = models.CharField(_("名称"), max_length=200, blank=True)
    phone = models.CharField(_("电话"), max_length=60, blank=True)
    # What customer_create will receive; the ID number only encrypted. Emptied when done.
    data = models.JSONField(default=dict, blank=True)
    errors = models.JSONField(default=list, blank=True)
    warnings = models.JSONField(default=list, blank=True)
    customer = models.ForeignKey(
        Customer, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("导入行")
        verbose_name_plural = _("导入行")
        constraints = [
            models.UniqueConstraint(fields=["job", "line"], name="importrow_job_line"),
        ]
        indexes = [
            models.Index(fields=["job", "status", "line"], name="importrow_status"),
        ]

    def __str__(self) -> str:
        return f"{self.job_id}:{self.line}"


class ExportRequestQuerySet(models.QuerySet):
    def visible_to(self, user: settings.AUTH_USER_MODEL) -> ExportRequestQuerySet:
        """The requester's own requests, and those of people in the user's scope; for a
        manager also the requests of the only admin (sole_admin_requester)."""
        condition = access.owner_filter(
            user, owner="requested_by", team="requested_by__team"
        )
        if condition is None:
            return self
        sole_admin = sole_admin_requester(user)
        if sole_admin is not None:
            condition |= models.Q(requested_by=sole_admin)
        return self.filter(condition)


def sole_admin_requester(manager: settings.AUTH_USER_MODEL) -> int | None:
    """The id of the only active admin when `manager` may decide that admin's export
    requests, else None (one query, for managers only).

    Nobody approves their own export, so with a single admin that admin's requests
    would wait for ever. The rule (docs/settings.md): the managers of the admin's
    department decide them, or every manager when the admin is in no team. An approver
    must still see every customer in the export (customers.exports).
    """
    if getattr(manager, "role", None) != Role.MANAGER or not manager.is_active:
        return None
    from django.contrib.auth import get_user_model

    admins = list(
        get_user_model()
        .objects.filter(
            models.Q(groups__name=Role.ADMIN) | models.Q(is_superuser=True),
            is_active=True,
        )
        .values_list("pk", "team__department")
        .distinct()[:2]
    )
    if len(admins) != 1:
        return None
    admin_id, department_id = admins[0]
    if department_id is None or department_id == manager.department_id:
        return admin_id
    return None


class ExportRequest(models.Model):
    """An export too big to hand out at once: a second person approves it first.

    GB/T 35273-2020 §7.1 asks for internal approval of bulk downloads. The filters are
    stored as the list page's whitelisted filter names and plain values, and are read
    again through the same form when the file is built, never splatted into the ORM.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("待审批")
        APPROVED = "approved", _("生成中")
        PRODUCED = "produced", _("可下载")
        DOWNLOADED = "downloaded", _("已下载")
        REJECTED = "rejected", _("已拒绝")
        EXPIRED = "expired", _("已过期")
        FAILED = "failed", _("失败")

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        XLSX = "xlsx", "Excel"

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("申请人"),
    )
    # {"q": ..., "sort": ..., "kind": ...}: names from CustomerFilterForm only.
    filters = models.JSONField(_("筛选条件"), default=dict, blank=True)
    filter_summary = models.CharField(_("筛选条件"), max_length=500, blank=True)
    file_format = models.CharField(
        _("格式"), max_length=4, choices=Format, default=Format.CSV
    )
    row_count = models.PositiveIntegerField(_("申请时行数"))
    reason = models.CharField(_("导出原因"), max_length=300)
    status = models.CharField(
        _("状态"), max_length=12, choices=Status, default=Status.PENDING
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("审批人"),
    )
    decision_note = models.CharField(_("审批意见"), max_length=300, blank=True)
    decided_at = models.DateTimeField(_("审批时间"), null=True, blank=True)
    # Relative to the export folder under KEHU_DATA_DIR; a random name.
    file_name = models.CharField(max_length=100, blank=True)
    rows_written = models.PositiveIntegerField(default=0)
    # A building task holds the request until lease_until (renewed as rows are
    # written); when it runs out, or nobody took the request since queued_at, the
    # request page queues it again (exports.export_request_kick).
    lease_until = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    produced_rows = models.PositiveIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(_("申请时间"), auto_now_add=True)
    produced_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(_("下载截止"), null=True, blank=True)
    downloaded_at = models.DateTimeField(null=True, blank=True)

    objects = ExportRequestQuerySet.as_manager()

    class Meta:
        verbose_name = _("导出申请")
        verbose_name_plural = _("导出申请")
        indexes = [
            models.Index(fields=["status", "-created_at"], name="exportreq_status"),
            models.Index(
                fields=["requested_by", "-created_at"], name="exportreq_user_recent"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.pk} {self.get_status_display()}"

    def get_absolute_url(self) -> str:
        return reverse("customers:export_request_detail", args=[self.pk])

    @property
    def percent(self) -> int:
        if self.status in (self.Status.PRODUCED, self.Status.DOWNLOADED):
            return 100
        return (
            min(100, self.rows_written * 100 // self.row_count) if self.row_count else 0
        )
