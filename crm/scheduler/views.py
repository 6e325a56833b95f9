"""Admin pages for actions the pipeline parked as needs_review."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from crm.accounts import access
from crm.accounts.roles import Role
from crm.scheduler import selectors, services
from crm.scheduler.models import ScheduledAction


@require_http_methods(["GET"])
@access.role_required(Role.ADMIN)
def action_review(request: HttpRequest) -> HttpResponse:
    """待人工核查的定时动作: kind, target, attempts and the last error of each."""
    return render(
        request, "scheduler/action_review.html", selectors.actions_needing_review()
    )


@require_http_methods(["POST"])
@access.role_required(Role.ADMIN)
def action_retry(request: HttpRequest, pk: int) -> HttpResponse:
    access.get_object_for(ScheduledAction.objects.only("pk"), pk)  # or 404
    try:
        action = services.action_retry(by=request.user, action_id=pk)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request,
            _("已重新安排定时动作 %(kind)s #%(target)s，即将执行。")
            % {"kind": action.kind, "target": action.target_id},
        )
    return redirect("scheduler:action_review")


@require_http_methods(["POST"])
@access.role_required(Role.ADMIN)
def action_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    access.get_object_for(ScheduledAction.objects.only("pk"), pk)  # or 404
    try:
        action = services.action_dismiss(by=request.user, action_id=pk)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request,
            _("已取消定时动作 %(kind)s #%(target)s。")
            % {"kind": action.kind, "target": action.target_id},
        )
    return redirect("scheduler:action_review")
