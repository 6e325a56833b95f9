"""S8, property fuzzing: for each form, hypothesis draws submissions
(`hypothesis.extra.django.from_form`); `is_valid()` never raises, and whatever the form
accepts, the service the view calls saves without IntegrityError or DataError: the
form's rules cover the database's constraints. A ValidationError from the service is
fine (the view shows it on the form).

Bounded fields (crm/core/bounds.py) draw mostly inside their range and sometimes from
anywhere in years 1-9999, so that the form, not the database, is what refuses year 1.
`test_every_form_field_is_bounded` checks that each date, datetime, number and text field
of every form in the project has a range or a length, and `test_every_form_is_fuzzed`
that each form is listed below (or says why not), so a new form fails until it is.

Every example runs in a savepoint rolled back afterwards. Examples per form in the PR
tier: 200 for the customer and ticket forms, 20-50 for the rest (Fuzz.examples; 200
for every form took several times the suite's time budget); 5,000 each in the nightly variant.
`derandomize=True` makes a PR run repeatable.
"""

from __future__ import annotations

import datetime as dt
import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django import forms
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import from_form, register_field_strategy

from crm.accounts import admin_forms as accounts_admin_forms
from crm.accounts import admin_views as accounts_admin
from crm.core import bounds, crud
from customers import services as customer_services
from customers.forms import (
    ContactQuickForm,
    CustomerFilterForm,
    CustomerForm,
    FollowUpForm,
    PoolFilterForm,
    ProfileForm,
    ReleaseForm,
    RevealForm,
)
from customers.models import Customer
from service import admin_forms as service_admin_forms
from service import admin_views as service_admin
from service import services as service_services
from service.forms import (
    AssetForm,
    CallerForm,
    FollowMessageForm,
    IntakeForm,
    QueueFilterForm,
    ReferenceForm,
    ReplyForm,
    TicketForm,
    TransitionForm,
    WorkOrderForm,
    WorkOrderUpdateForm,
)
from service.handover import services as handover_services
from service.handover.forms import BookingForm, EventForm, SlotDayForm
from service.handover.models import HandoverEvent, TimeSlot
from service.models import Category

# A sweep of every page: .ci/run's step c (system PostgreSQL) leaves it to step b.
pytestmark = pytest.mark.sweep

# Errors a view turns into a message on the page; anything else escaping is a bug.
SHOWN_TO_USER = (
    ValidationError,
    service_services.EditConflict,
    customer_services.EditConflict,
    handover_services.BookingError,
)
NIGHTLY_EXAMPLES = 5000
# Random text is almost never a phone number: mix in real ones and their variants.
PHONE_TEXT = st.one_of(
    st.sampled_from(
        ["13800138000", "+86 138 0013 8000", "１３８００１３８０００", "+852 9123 4567"]
    ),
    st.from_regex(r"\A1[3-9][0-9]{9}\Z"),
    st.text(max_size=30),
)
# A blank choice, or any id the form must refuse.
BLANK_OR_JUNK = st.one_of(st.just(""), st.text(max_size=5), st.integers())


# The bounded fields: mostly in range (the save path gets exercised), sometimes the
# extremes a request can carry (the form must refuse them).
_LOW, _HIGH = bounds.BUSINESS_DATE_MIN, bounds.BUSINESS_DATE_MAX
_EDGES = [dt.date(1, 1, 1), dt.date(1999, 12, 31), dt.date(2200, 1, 1), dt.date.max]
register_field_strategy(
    bounds.DateField,
    st.one_of(st.dates(_LOW, _HIGH), st.sampled_from(_EDGES), st.dates()),
)
register_field_strategy(
    bounds.DateTimeField,
    st.one_of(
        st.datetimes(
            dt.datetime.combine(_LOW, dt.time.min),
            dt.datetime.combine(_HIGH, dt.time.max),
        ),
        st.sampled_from([dt.datetime.combine(d, dt.time(23, 59)) for d in _EDGES]),
        st.datetimes(),
    ),
)


class Stage:
    def __init__(self, people: dict[str, Any]) -> None:
        self.people = people
        self.customer = customer_services.customer_create(
            by=people["sales_rep"], data={"name": "模糊客户"}
        )
        self.organization = customer_services.customer_create(
            by=people["sales_rep"],
            data={"name": "模糊机构", "is_organization": True},
            phone_numbers=["13955556666"],
        )
        self.ticket = service_services.ticket_create(
            by=people["admin_user"],
            customer=self.customer,
            ticket_type="repair",
            channel="hotline",
            subject="门锁",
            description="门锁坏了",
        )
        self.category = Category.objects.create(name="模糊分类")
        self.department = people["service_agent"].team.department
        self.order = service_services.workorder_create(
            by=people["admin_user"],
            ticket=self.ticket,
            department=self.department,
            title="换锁",
            due_at=timezone.now() + dt.timedelta(days=1),
        )
        start = timezone.localdate() + dt.timedelta(days=3)
        self.event = HandoverEvent.objects.create(
            name="交付",
            project_name="云湖",
            venue="会所",
            start_date=start,
            end_date=start + dt.timedelta(days=2),
            status=HandoverEvent.Status.PUBLISHED,
            created_by=people["manager"],
        )
        TimeSlot.objects.create(
            event=self.event,
            date=start,
            start_time=dt.time(9),
            end_time=dt.time(10),
            capacity=3,
        )


@dataclass
class Fuzz:
    name: str
    examples: int
    strategy: Callable[[Stage], Any]
    save: Callable[[Stage, Any], Any] | None


def _customer(s: Stage, form: CustomerForm) -> None:
    customer_services.customer_create(
        by=s.people["sales_rep"], **form.service_arguments()
    )


def _customer_edit(s: Stage, form: CustomerForm) -> None:
    customer_services.customer_update(
        by=s.people["sales_rep"],
        customer=Customer.objects.get(pk=s.customer.pk),
        version=s.customer.version,
        **form.service_arguments(),
    )


def _settings_save(resource: crud.Resource) -> Callable[[Stage, Any], None]:
    """The settings area's save path: crud.resource_save as the admin."""

    def save(s: Stage, form: forms.ModelForm) -> None:
        crud.resource_save(
            by=s.people["admin_user"],
            resource=resource,
            instance=form.instance,
            data=form.cleaned_data,
        )

    return save


def _ticket(s: Stage, form: TicketForm) -> None:
    service_services.ticket_create(
        by=s.people["service_agent"], customer=s.customer, **form.cleaned_data
    )


def _intake(s: Stage, form: IntakeForm) -> None:
    service_services.intake_submit(ip="127.0.0.1", **form.cleaned_data)


def _slots(s: Stage, form: SlotDayForm) -> None:
    handover_services.slots_add_day(
        by=s.people["manager"], event=s.event, **form.cleaned_data
    )


def _booking(s: Stage, form: BookingForm) -> None:
    handover_services.appointment_book(
        by=s.people["sales_rep"], customer=s.customer, **form.cleaned_data
    )


def _organizations(s: Stage) -> Any:
    return Customer.objects.filter(is_organization=True)


FUZZES = [
    # The settings area (crm/core/crud.py): admins' forms of reference data.
    Fuzz(
        "sla policy",
        50,
        lambda s: from_form(service_admin_forms.SLAPolicyForm),
        _settings_save(service_admin.SLA_POLICIES),
    ),
    Fuzz(
        "category",
        25,
        lambda s: from_form(
            service_admin_forms.CategoryForm,
            parent=st.one_of(BLANK_OR_JUNK, st.just(s.category.pk)),
            team=BLANK_OR_JUNK,
        ),
        _settings_save(service_admin.CATEGORIES),
    ),
    Fuzz(
        "working period",
        25,
        lambda s: from_form(service_admin_forms.WorkingPeriodForm),
        _settings_save(service_admin.WORKING_PERIODS),
    ),
    Fuzz(
        "holiday",
        25,
        lambda s: from_form(service_admin_forms.CalendarDayForm),
        _settings_save(service_admin.CALENDAR_DAYS),
    ),
    Fuzz(
        "canned reply",
        25,
        lambda s: from_form(service_admin_forms.CannedReplyForm),
        _settings_save(service_admin.CANNED_REPLIES),
    ),
    Fuzz(
        "department",
        25,
        lambda s: from_form(accounts_admin_forms.DepartmentForm),
        _settings_save(accounts_admin.DEPARTMENTS),
    ),
    Fuzz(
        "team",
        25,
        lambda s: from_form(
            accounts_admin_forms.TeamForm,
            department=st.one_of(BLANK_OR_JUNK, st.just(s.department.pk)),
            lead=BLANK_OR_JUNK,
            members=st.just([]),
        ),
        _settings_save(accounts_admin.TEAMS),
    ),
    Fuzz(
        "user settings",
        25,
        lambda s: from_form(
            accounts_admin_forms.UserSettingsForm,
            form_kwargs={"instance": s.people["service_agent"]},
            team=BLANK_OR_JUNK,
        ),
        _settings_save(accounts_admin.USERS),
    ),
    Fuzz(
        "customer",
        200,
        lambda s: from_form(
            CustomerForm,
            form_kwargs={"organizations": _organizations(s)},
            organization=st.one_of(BLANK_OR_JUNK, st.just(s.organization.pk)),
            parent=st.one_of(BLANK_OR_JUNK, st.just(s.organization.pk)),
        ),
        _customer,
    ),
    Fuzz(
        "customer edit",
        25,
        lambda s: from_form(
            CustomerForm,
            form_kwargs={"organizations": _organizations(s), "instance": s.customer},
            organization=BLANK_OR_JUNK,
            parent=BLANK_OR_JUNK,
        ),
        _customer_edit,
    ),
    Fuzz(
        "contact log",
        25,
        lambda s: from_form(ContactQuickForm),
        lambda s, form: customer_services.contact_log_create(
            by=s.people["sales_rep"], customer=s.customer, **form.cleaned_data
        ),
    ),
    Fuzz(
        "follow-up",
        25,
        lambda s: from_form(FollowUpForm),
        lambda s, form: customer_services.followup_create(
            by=s.people["sales_rep"],
            customer=s.customer,
            assignee=s.people["sales_rep"],
            **form.cleaned_data,
        ),
    ),
    Fuzz(
        "profile",
        25,
        lambda s: from_form(ProfileForm),
        lambda s, form: customer_services.profile_update(
            by=s.people["sales_rep"], customer=s.customer, data=form.cleaned_data
        ),
    ),
    Fuzz(
        "ticket",
        200,
        lambda s: from_form(
            TicketForm,
            form_kwargs={
                "assets": s.customer.assets.all(),
                "categories": Category.objects.all(),
                "can_attach": False,
            },
            asset=BLANK_OR_JUNK,
            category=st.one_of(BLANK_OR_JUNK, st.just(s.category.pk)),
        ),
        _ticket,
    ),
    Fuzz(
        "reply",
        25,
        lambda s: from_form(ReplyForm),
        lambda s, form: service_services.ticket_message_add(
            by=s.people["service_agent"],
            ticket=s.ticket,
            body=form.cleaned_data["body"],
            kind=form.cleaned_data["kind"],
        ),
    ),
    Fuzz(
        "transition",
        25,
        lambda s: from_form(TransitionForm),
        lambda s, form: service_services.ticket_transition(
            by=s.people["service_agent"],
            ticket=s.ticket,
            to_status=form.cleaned_data["to_status"],
            note=form.cleaned_data["note"],
            resolution_summary=form.cleaned_data["resolution_summary"],
        ),
    ),
    Fuzz(
        "work order",
        25,
        lambda s: from_form(
            WorkOrderForm,
            form_kwargs={"departments": type(s.department).objects.all()},
            department=st.one_of(BLANK_OR_JUNK, st.just(s.department.pk)),
        ),
        lambda s, form: service_services.workorder_create(
            by=s.people["service_agent"],
            ticket=s.ticket,
            **{k: v for k, v in form.cleaned_data.items() if k != "version"},
        ),
    ),
    Fuzz(
        "work order result",
        25,
        lambda s: from_form(WorkOrderUpdateForm),
        lambda s, form: service_services.workorder_update(
            by=s.people["service_agent"], order=s.order, **form.cleaned_data
        ),
    ),
    Fuzz(
        "asset",
        25,
        lambda s: from_form(
            AssetForm,
            form_kwargs={"dealers": Customer.objects.filter(kind="dealer")},
            dealer=BLANK_OR_JUNK,
        ),
        lambda s, form: service_services.asset_create(
            by=s.people["service_agent"], customer=s.customer, data=form.cleaned_data
        ),
    ),
    Fuzz(
        "public intake",
        50,
        lambda s: from_form(IntakeForm, phone=PHONE_TEXT),
        _intake,
    ),
    Fuzz(
        "customer follow",
        25,
        # The photo goes through attachment_add's checks (tests/service/test_follow.py).
        lambda s: from_form(FollowMessageForm, photo=st.none()),
        lambda s, form: service_services.ticket_customer_message_add(
            ticket=s.ticket, ip="127.0.0.1", **form.cleaned_data
        ),
    ),
    Fuzz(
        "handover event",
        25,
        lambda s: from_form(EventForm),
        lambda s, form: handover_services.event_save(
            by=s.people["manager"], data=form.cleaned_data
        ),
    ),
    Fuzz(
        "handover slots",
        # Five fields each drawn valid or junk: 40 examples once drew no valid form
        # at all on a CI worker, and then the save path is never tried.
        100,
        # Fewer than 5-minute slots over a day would only make the example slow.
        lambda s: from_form(
            SlotDayForm,
            interval_minutes=st.one_of(st.integers(60, 480), BLANK_OR_JUNK),
        ),
        _slots,
    ),
    Fuzz(
        "handover booking",
        25,
        lambda s: from_form(
            BookingForm,
            form_kwargs={"slots": TimeSlot.objects.filter(event=s.event)},
            slot=st.one_of(
                BLANK_OR_JUNK,
                st.sampled_from(
                    list(
                        TimeSlot.objects.filter(event=s.event).values_list(
                            "pk", flat=True
                        )
                    )
                ),
            ),
        ),
        _booking,
    ),
    # Forms that only filter or check: is_valid() must not raise.
    Fuzz(
        "customer filters",
        25,
        lambda s: from_form(
            CustomerFilterForm,
            form_kwargs={"owners": [s.people["sales_rep"]], "teams": []},
            owner=BLANK_OR_JUNK,
            team=BLANK_OR_JUNK,
        ),
        None,
    ),
    Fuzz(
        "queue filters",
        25,
        lambda s: from_form(
            QueueFilterForm,
            form_kwargs={"categories": Category.objects.all()},
            category=BLANK_OR_JUNK,
        ),
        None,
    ),
    Fuzz("reference", 20, lambda s: from_form(ReferenceForm), None),
    Fuzz("reveal reason", 20, lambda s: from_form(RevealForm), None),
    Fuzz(
        "new caller",
        50,
        lambda s: from_form(CallerForm, phone=PHONE_TEXT),
        lambda s, form: customer_services.caller_register(
            by=s.people["service_agent"],
            name=form.cleaned_data["name"],
            phone=form.cleaned_data["phone"],
        ),
    ),
    Fuzz("pool filters", 25, lambda s: from_form(PoolFilterForm), None),
    Fuzz("release reason", 20, lambda s: from_form(ReleaseForm), None),
]


@pytest.fixture
def stage(sales_rep, manager, service_agent, admin_user) -> Stage:
    return Stage(
        {
            "sales_rep": sales_rep,
            "manager": manager,
            "service_agent": service_agent,
            "admin_user": admin_user,
        }
    )


def _as_posted(value: Any) -> Any:
    """The drawn value as a browser would post it: text (from_form hands the form
    Python objects, e.g. times with a time zone, which no request can carry)."""
    if isinstance(value, bool):
        return "on" if value else ""
    if isinstance(value, dt.datetime):
        # isoformat pads the year (strftime writes year 1 as "1", which no form reads).
        return value.replace(tzinfo=None).isoformat(timespec="seconds")
    if isinstance(value, dt.time):
        return value.strftime("%H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return [_as_posted(v) for v in value]
    return str(value)


def _fuzz(stage: Stage, fuzz: Fuzz, examples: int) -> None:
    accepted = []

    @settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        savepoint = transaction.savepoint()
        try:
            form = data.draw(fuzz.strategy(stage))
            form.data = {k: _as_posted(v) for k, v in form.data.items()}
            if form.is_valid():
                accepted.append(1)
            if form.is_valid() and fuzz.save is not None:
                try:
                    fuzz.save(stage, form)
                except SHOWN_TO_USER:
                    pass
                except PermissionDenied:
                    pass
        finally:
            transaction.savepoint_rollback(savepoint)

    run()
    # Otherwise the save path was never tried and the test could not fail.
    assert accepted, f"{fuzz.name}: no drawn submission passed the form"


@pytest.mark.parametrize("fuzz", FUZZES, ids=[f.name for f in FUZZES])
def test_form_rules_cover_the_database_constraints(stage, fuzz):
    _fuzz(stage, fuzz, fuzz.examples)


@pytest.mark.nightly
@pytest.mark.parametrize("fuzz", FUZZES, ids=[f.name for f in FUZZES])
def test_form_rules_cover_the_database_constraints_at_length(stage, fuzz):
    _fuzz(stage, fuzz, NIGHTLY_EXAMPLES)


# --- every form field is bounded, every form is fuzzed --------------------------------------

FORM_MODULES = (
    "crm.accounts.forms",
    "crm.core.forms",
    "customers.forms",
    "customers.io_forms",
    "service.forms",
    "service.handover.forms",
    "service.handover.capture_forms",
    "service.handover.onsite_forms",
    "crm.accounts.admin_forms",
    "service.admin_forms",
)
# Forms not in FUZZES, and why.
NOT_FUZZED = {
    "ReassignForm": "ids come from checkboxes; covered by tests/customers/test_pool_reassign",
    "AttachmentForm": "files only; tests/security/test_uploads.py",
    "AssignForm": "one choice of a queryset and the version",
    "RatingForm": "one typed choice of 1-5",
    "DealerReportForm": "one typed choice; tests/security/test_param_fuzz.py",
    "RescheduleForm": "a slot choice and the version, like BookingForm",
    "VersionForm": "the version alone",
    "ImportUploadForm": "files only; tests/security/test_uploads.py",
    "ExportRequestForm": "a choice and a bounded reason",
    "ExportDecisionForm": "a choice and a bounded note",
    "AuditFilterForm": "a GET filter; tests/security/test_param_fuzz.py",
    "VersionedForm": "the base of the ticket forms above",
    "AssetSettingsForm": "AssetForm on the settings page; fuzzed as asset",
    # 入伙 stations and outcomes (tests/handover/test_captures.py, test_outcomes.py
    # post bad input to each: a form error or a refusal, nothing written).
    "SettlementForm": "two bounded decimals; the amount fits the case's check",
    "FeeForm": "FeePayment's own fields, amount bounded to the check constraint",
    "FeeVoidForm": "one bounded reason; captures.fee_void refuses a blank one",
    "StationAddForm": "a choice, a bounded name and bounded numbers; onsite.station_add "
    "checks the sequence (tests/handover/test_station_add_delete.py)",
    "KeysForm": "a choice and bounded counts",
    "SignatureForm": "one bounded string; captures.signature_png checks the PNG",
    "SurveyForm": "a typed choice of 1-5 and a bounded comment",
    "OutcomeForm": "the version alone",
    "AcceptForm": "the version and a flag",
    "NotAcceptedForm": "a bounded reason and a bounded date from today",
    "RefusalForm": "a choice, bounded texts, a bounded date; files via check_upload",
    "NoShowNextForm": "a choice and the version",
    "ReinspectionForm": "a bounded slot id and a bounded reason; "
    "tests/handover/test_reinspection.py posts bad ids, full, past and foreign slots",
}
# Fields of crm.accounts (its own helpers' area) that take text of any length.
UNBOUNDED_FIELDS = {
    # Django's auth forms; a long password only costs its PBKDF2 hash, which the
    # login limits (crm/accounts) bound per username and per address.
    f"crm.accounts.forms.{form}.password"
    for form in ("AdminLoginForm", "LoginForm", "PasswordConfirmForm", "TotpEnrolForm")
}
FUZZED = {
    "sla policy": "SLAPolicyForm",
    "category": "CategoryForm",
    "working period": "WorkingPeriodForm",
    "holiday": "CalendarDayForm",
    "canned reply": "CannedReplyForm",
    "department": "DepartmentForm",
    "team": "TeamForm",
    "user settings": "UserSettingsForm",
    "customer": "CustomerForm",
    "contact log": "ContactQuickForm",
    "follow-up": "FollowUpForm",
    "profile": "ProfileForm",
    "ticket": "TicketForm",
    "reply": "ReplyForm",
    "transition": "TransitionForm",
    "work order": "WorkOrderForm",
    "work order result": "WorkOrderUpdateForm",
    "asset": "AssetForm",
    "public intake": "IntakeForm",
    "customer follow": "FollowMessageForm",
    "handover event": "EventForm",
    "handover slots": "SlotDayForm",
    "handover booking": "BookingForm",
    "customer filters": "CustomerFilterForm",
    "queue filters": "QueueFilterForm",
    "reference": "ReferenceForm",
    "reveal reason": "RevealForm",
    "new caller": "CallerForm",
    "pool filters": "PoolFilterForm",
    "release reason": "ReleaseForm",
}


def _project_forms() -> list[type[forms.BaseForm]]:
    found = []
    for name in FORM_MODULES:
        module = importlib.import_module(name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(cls, forms.BaseForm)
                and cls.__module__ == name
                and not cls.__name__.startswith("_")
                and cls.base_fields
            ):
                found.append(cls)
    return found


def _unbounded(field: forms.Field) -> str | None:
    """Why `field` takes values without a range or a length, or None if it does not."""
    if isinstance(field, forms.DateTimeField):
        return None if isinstance(field, bounds.DateTimeField) else "datetime"
    if isinstance(field, forms.DateField):
        return None if isinstance(field, bounds.DateField) else "date"
    if isinstance(field, forms.DecimalField):
        return None if field.max_digits else "decimal without max_digits"
    if isinstance(field, forms.IntegerField):
        kinds = {type(v) for v in field.validators}
        has_range = {MinValueValidator, MaxValueValidator} <= kinds
        return None if has_range else "integer without min and max"
    if isinstance(field, forms.FloatField):
        return "float (use a decimal with max_digits)"
    if type(field) in (forms.CharField, forms.EmailField):
        return None if field.max_length else "text without max_length"
    return None


def test_every_form_field_is_bounded():
    problems = [
        f"{cls.__module__}.{cls.__name__}.{name}: {why}"
        for cls in _project_forms()
        for name, field in cls.base_fields.items()
        if (why := _unbounded(field))
        and f"{cls.__module__}.{cls.__name__}.{name}" not in UNBOUNDED_FIELDS
    ]
    assert not problems, "\n".join(problems)


def test_every_form_is_fuzzed():
    fuzzed = {FUZZED[f.name] for f in FUZZES if f.name in FUZZED}
    missing = sorted(
        cls.__name__
        for cls in _project_forms()
        if cls.__name__ not in fuzzed
        and cls.__name__ not in NOT_FUZZED
        and cls.__module__ != "crm.accounts.forms"
    )
    assert not missing, f"add to FUZZES or NOT_FUZZED: {missing}"
