from __future__ import annotations

import factory
from django.contrib.auth.models import Group

from crm.accounts.models import Department, Team, User
from customers.models import Customer


class DepartmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Department
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"部门{n}")


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"团队{n}")
    department = factory.SubFactory(DepartmentFactory)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    display_name = factory.Faker("name", locale="zh_CN")
    team = factory.SubFactory(TeamFactory)
    password = factory.django.Password("pw-for-tests-123")

    @factory.post_generation
    def role(self, create: bool, extracted: str | None, **kwargs: object) -> None:
        if create and extracted:
            self.groups.add(Group.objects.get(name=extracted))


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    name = factory.Faker("name", locale="zh_CN")
    phone = factory.Sequence(lambda n: f"138{n:08d}")
    owner = factory.SubFactory(UserFactory)
    team = factory.SelfAttribute("owner.team")


def _now() -> object:
    # Imported here so that this addition leaves the module's imports alone.
    from django.utils import timezone

    return timezone.now()


class CustomerPhoneFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "customers.CustomerPhone"

    customer = factory.SubFactory(CustomerFactory)
    number = factory.Sequence(lambda n: f"137{n:08d}")
    kind = "mobile"
    is_primary = True


class ContactLogFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "customers.ContactLog"

    customer = factory.SubFactory(CustomerFactory)
    author = factory.SelfAttribute("customer.owner")
    channel = "phone"
    occurred_at = factory.LazyFunction(_now)
    summary = factory.Sequence(lambda n: f"第{n}次沟通")


class FollowUpFactory(factory.django.DjangoModelFactory):
    """A bare follow-up row (no reminder); services.followup_create schedules one."""

    class Meta:
        model = "customers.FollowUp"

    customer = factory.SubFactory(CustomerFactory)
    assignee = factory.SelfAttribute("customer.owner")
    created_by = factory.SelfAttribute("assignee")
    due_at = factory.LazyFunction(_now)
    note = factory.Sequence(lambda n: f"跟进事项{n}")


# --- service desk (string model references keep this module's imports unchanged) ---


def _in_one_day() -> object:
    from datetime import timedelta

    from django.utils import timezone

    return timezone.now() + timedelta(days=1)


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "service.Category"

    name = factory.Sequence(lambda n: f"分类{n}")
    team = None


class SLAPolicyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "service.SLAPolicy"
        django_get_or_create = ("ticket_type", "priority", "for_key_accounts")

    name = factory.Sequence(lambda n: f"SLA 策略{n}")
    ticket_type = "complaint"
    priority = "normal"
    for_key_accounts = False
    first_response_minutes = 60
    resolution_minutes = 480
    warn_before_minutes = 30


class AssetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "service.Asset"

    customer = factory.SubFactory(CustomerFactory)
    kind = "appliance"
    name = factory.Sequence(lambda n: f"空调{n}")


class TicketFactory(factory.django.DjangoModelFactory):
    """A bare ticket row: no SLA clocks or actions (services.ticket_create starts them).

    References start with the year 2000, which services.next_reference never produces.
    """

    class Meta:
        model = "service.Ticket"

    reference = factory.Sequence(lambda n: f"2000{n:06d}")
    customer = factory.SubFactory(CustomerFactory)
    ticket_type = "complaint"
    channel = "hotline"
    subject = factory.Sequence(lambda n: f"工单主题{n}")
    description = "客户反映的问题。"
    status = "new"


class TicketMessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "service.TicketMessage"

    ticket = factory.SubFactory(TicketFactory)
    kind = "reply"
    body = factory.Sequence(lambda n: f"消息{n}")


class WorkOrderFactory(factory.django.DjangoModelFactory):
    """A bare work order (no overdue action); services.workorder_create schedules one."""

    class Meta:
        model = "service.WorkOrder"

    ticket = factory.SubFactory(TicketFactory)
    department = factory.SubFactory(DepartmentFactory)
    title = factory.Sequence(lambda n: f"后台事项{n}")
    due_at = factory.LazyFunction(_in_one_day)


def deal_stage(code: str) -> object:
    """One of the default stages (migration deals.0002): visit, pledge, subscribe,
    sign, paid."""
    import importlib

    from culture.deals.models import DealStage

    stage = DealStage.objects.filter(code=code).first()
    if stage is None:
        # A transactional test's flush removed the migration's rows: put them back.
        defaults = importlib.import_module(
            "culture.deals.migrations.0002_default_stages"
        ).DEFAULT_STAGES
        for key, name, position, probability, is_won in defaults:
            DealStage.objects.get_or_create(
                code=key,
                defaults={
                    "name": name,
                    "position": position,
                    "probability": probability,
                    "is_won": is_won,
                },
            )
        stage = DealStage.objects.get(code=code)
    return stage


class DealFactory(factory.django.DjangoModelFactory):
    """A bare deal row (no stage change, totals untouched); the services keep totals."""

    class Meta:
        model = "deals.Deal"

    customer = factory.SubFactory(CustomerFactory)
    owner = factory.SelfAttribute("customer.owner")
    team = factory.SelfAttribute("owner.team")
    title = factory.Sequence(lambda n: f"商机{n}")
    amount = 1_000_000
    stage = factory.LazyFunction(lambda: deal_stage("visit"))
