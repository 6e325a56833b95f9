# Fixtures for .semgrep/kehu.yml, checked by `semgrep --test` (make audit, .ci/run).
# `ruleid:` marks a line the rule must report, `ok:` one it must not.
# ruff: noqa
from celery import shared_task
from django import forms
from django.db import transaction
from django.db.models import Q
from django.utils.html import format_html
from django.utils.safestring import mark_safe

# ruleid: kehu-no-csrf-exempt
from django.views.decorators.csrf import csrf_exempt


# ruleid: kehu-no-csrf-exempt
@csrf_exempt
def webhook(request):
    return None


def page(request, name):
    # ruleid: kehu-no-mark-safe
    banner = mark_safe("<b>%s</b>" % name)
    # ok: kehu-no-mark-safe
    banner = format_html("<b>{}</b>", name)
    return banner


def search(request, Customer):
    params = request.GET.dict()
    # ruleid: kehu-no-orm-kwargs-from-request
    rows = Customer.objects.filter(**params)
    # ruleid: kehu-no-orm-kwargs-from-request
    rows = Customer.objects.filter(Q(**request.POST.dict()))
    # ruleid: kehu-no-orm-kwargs-from-request
    rows = rows.annotate(**{request.GET["name"]: Q(pk=1)})
    # ok: kehu-no-orm-kwargs-from-request
    rows = Customer.objects.filter(name__icontains=request.GET.get("q", ""))
    wanted = {"stage": "lead"}
    # ok: kehu-no-orm-kwargs-from-request
    rows = Customer.objects.filter(**wanted)
    return rows


def lock(Ticket, pk):
    # ruleid: kehu-select-for-update-needs-no-key
    Ticket.objects.select_for_update().get(pk=pk)
    # ruleid: kehu-select-for-update-needs-no-key
    Ticket.objects.filter(pk=pk).select_for_update(skip_locked=True)
    # ok: kehu-select-for-update-needs-no-key
    Ticket.objects.select_for_update(no_key=True).get(pk=pk)
    # ok: kehu-select-for-update-needs-no-key
    Ticket.objects.select_for_update(skip_locked=True, no_key=False)


@shared_task
def notify(pk):
    return pk


def save(pk):
    with transaction.atomic():
        # ruleid: kehu-no-enqueue-inside-atomic
        notify.delay(pk)
        # ruleid: kehu-no-enqueue-inside-atomic
        notify.apply_async(args=[pk])
        # ok: kehu-no-enqueue-inside-atomic
        transaction.on_commit(lambda: notify.delay(pk))
    # ok: kehu-no-enqueue-inside-atomic
    notify.delay(pk)


@transaction.atomic
def save_decorated(pk):
    # ruleid: kehu-no-enqueue-inside-atomic
    notify.delay(pk)


def later(pk, when):
    # ruleid: kehu-no-broker-delay
    notify.apply_async(args=[pk], countdown=3600)
    # ruleid: kehu-no-broker-delay
    notify.apply_async(args=[pk], eta=when)
    # ok: kehu-no-broker-delay
    notify.apply_async(args=[pk], expires=60)


class CustomerForm(forms.ModelForm):
    class Meta:
        model = None
        # ruleid: kehu-no-all-fields-form
        fields = "__all__"


class NoteForm(forms.ModelForm):
    class Meta:
        model = None
        # ok: kehu-no-all-fields-form
        fields = ["text"]


# ok: kehu-no-all-fields-form
__all__ = ["NoteForm"]


# The production-settings rule applies to crm/settings/prod.py only; `semgrep --test`
# ignores a rule's paths, so it is exercised here.
# ruleid: kehu-no-debug-in-production
DEBUG = True
# ok: kehu-no-debug-in-production
DEBUG = False
