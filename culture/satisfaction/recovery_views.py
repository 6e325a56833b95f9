"""服务补救 pages: the list of recovery tasks and the task page with its recording form."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from crm.accounts import access
from crm.accounts.roles import Role
from crm.core import bounds
from crm.core.once import submit_once
from crm.core.pagination import paginate
from culture.satisfaction import recovery, recovery_selectors
from culture.satisfaction.models import RecoveryTask
from culture.satisfaction.recovery_forms import RecoveryRecordForm
from customers import masking
from customers.models import Customer
from service.models import Ticket

ALL_ROLES = tuple(Role.values)
PAGE_SIZE = 25
CONFLICT_MESSAGE = gettext_lazy(
    "该服务补救已被他人修改。下面显示的是最新状态，请核对后再提交。"
)


@require_http_methods(["GET"])
@access.role_required(*ALL_ROLES)
def task_list(request: HttpRequest) -> HttpResponse:
    params = bounds.params(request)
    done = params.flag("state", "done")
    page = paginate(
        recovery_selectors.task_list(user=request.user, done=done),
        params.page(),
        PAGE_SIZE,
    )
    page.object_list = recovery_selectors.mark_overdue(
        list(page.object_list), timezone.now()
    )
    return render(
        request,
        "satisfaction/recovery_list.html",
        {"page": page, "done": done},
    )


def _task(request: HttpRequest, pk: int) -> RecoveryTask:
    return access.get_object_for(
        recovery_selectors.task_for_page(user=request.user), pk
    )


def _render(
    request: HttpRequest,
    task: RecoveryTask,
    *,
    form: RecoveryRecordForm | None = None,
    status: int = 200,
) -> HttpResponse:
    user = request.user
    ticket = task.survey.ticket
    can_record = task.status == RecoveryTask.Status.OPEN and recovery.can_record(
        user, task
    )
    recovery_selectors.mark_overdue([task], timezone.now())
    # A manager sees the tasks of the department's teams, whose customers may be
    # outside the manager's own scope: the phone is shown only for customers in scope.
    can_see_customer = (
        Customer.objects.visible_to(user).filter(pk=task.customer_id).exists()
    )
    context = {
        "task": task,
        "survey": task.survey,
        "customer": task.customer,
        "can_see_pii": masking.can_see_pii(user) and can_see_customer,
        "can_see_customer": can_see_customer,
        "ticket": ticket,
        "can_see_ticket": ticket is not None
        and Ticket.objects.visible_to(user).filter(pk=ticket.pk).exists(),
        "history": recovery.escalation_history(task),
        "can_record": can_record,
        "form": form or (RecoveryRecordForm(task=task) if can_record else None),
    }
    return render(request, "satisfaction/recovery_detail.html", context, status=status)


@require_http_methods(["GET"])
@access.role_required(*ALL_ROLES)
def task_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _render(request, _task(request, pk))


@require_http_methods(["POST"])
@access.role_required(*ALL_ROLES)
@submit_once
def task_record(request: HttpRequest, pk: int) -> HttpResponse:
    task = _task(request, pk)
    if not recovery.can_record(request.user, task):
        raise PermissionDenied
    form = RecoveryRecordForm(request.POST, task=task)
    if not form.is_valid():
        return _render(request, task, form=form, status=400)
    data = form.cleaned_data
    try:
        recovery.recovery_record(
            by=request.user,
            task=task,
            version=data["version"],
            called_back_at=data["called_back_at"],
            outcome=data["outcome"],
            note=data["note"],
            second_score=data["second_score"],
        )
    except recovery.EditConflict:
        messages.error(request, CONFLICT_MESSAGE)
        current = _task(request, pk)
        fresh: QueryDict = request.POST.copy()
        fresh["version"] = str(current.version)
        return _render(
            request, current, form=RecoveryRecordForm(fresh, task=current), status=409
        )
    except ValidationError as error:
        current = _task(request, pk)
        if current.status != RecoveryTask.Status.OPEN:
            # Recorded meanwhile by someone else: show what they recorded.
            messages.error(request, " ".join(error.messages))
            return _render(request, current, status=409)
        _add_errors(form, error)
        return _render(request, current, form=form, status=400)
    messages.success(request, _("回访已记录，服务补救已完成。"))
    return redirect("recovery:task_detail", pk=task.pk)


def _add_errors(form: Any, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for field, errors in error.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error)
