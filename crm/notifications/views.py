from __future__ import annotations

from typing import Any

from django.core.paginator import Paginator
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from crm.accounts import access
from crm.accounts.roles import Role
from crm.core import bounds
from crm.notifications import services
from crm.notifications.models import Notification

# An htmx event the navbar's bell listens to: it reloads its count at once.
CHANGED_EVENT = "kehu:notifications"


def _lines(user: Any) -> QuerySet[Notification]:
    """The user's notification lines, newest first, each with the size of its group
    and its newest title and time: one query for the page (subqueries over
    grouped_into's index)."""
    grouped = (
        Notification.objects.filter(grouped_into=OuterRef("pk"))
        .order_by()
        .values("grouped_into")
        .annotate(n=Count("pk"))
        .values("n")
    )
    latest = Notification.objects.filter(grouped_into=OuterRef("pk")).order_by(
        "-created_at", "-id"
    )[:1]
    return (
        Notification.objects.lines()
        .filter(recipient=user)
        .annotate(
            more=Coalesce(Subquery(grouped, output_field=IntegerField()), Value(0)),
            # A group's line reads as its newest notification.
            latest_title=Subquery(latest.values("title")),
            latest_at=Subquery(latest.values("created_at")),
        )
        .order_by("-created_at", "-id")
    )


@require_http_methods(["GET"])
@access.role_required(*Role.values)
def notification_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(_lines(request.user), 30).get_page(bounds.params(request).page())
    template = (
        "notifications/_notification_results.html"
        if request.htmx
        else "notifications/notification_list.html"
    )
    return render(request, template, {"page": page})


@require_http_methods(["GET"])
@access.role_required(*Role.values)
def notification_bell(request: HttpRequest) -> HttpResponse:
    unread = (
        Notification.objects.unread().lines().filter(recipient=request.user).count()
    )
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
    if request.htmx:
        page = Paginator(_lines(request.user), 30).get_page(1)
        response = render(
            request, "notifications/_notification_results.html", {"page": page}
        )
        response["HX-Trigger"] = CHANGED_EVENT
        return response
    return redirect("notifications:notification_list")
