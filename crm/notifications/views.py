from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from crm.accounts import access
from crm.accounts.roles import Role
from crm.core import bounds
from crm.notifications import services
from crm.notifications.models import Notification


@require_http_methods(["GET"])
@access.role_required(*Role.values)
def notification_list(request: HttpRequest) -> HttpResponse:
    notifications = Notification.objects.filter(recipient=request.user).order_by(
        "-created_at", "-id"
    )
    page = Paginator(notifications, 30).get_page(bounds.params(request).page())
    return render(request, "notifications/notification_list.html", {"page": page})


@require_http_methods(["GET"])
@access.role_required(*Role.values)
def notification_bell(request: HttpRequest) -> HttpResponse:
    unread = Notification.objects.unread().filter(recipient=request.user).count()
    return render(request, "notifications/_bell.html", {"unread_count": unread})


@require_http_methods(["POST"])
@access.role_required(*Role.values)
def notification_read(request: HttpRequest, pk: int) -> HttpResponse:
    services.notifications_mark_read(by=request.user, ids=[pk])
    notification = Notification.objects.filter(recipient=request.user, pk=pk).first()
    if notification and notification.url.startswith("/"):
        return redirect(notification.url)
    return redirect("notifications:notification_list")


@require_http_methods(["POST"])
@access.role_required(*Role.values)
def notification_read_all(request: HttpRequest) -> HttpResponse:
    services.notifications_mark_read(by=request.user)
    return redirect("notifications:notification_list")
