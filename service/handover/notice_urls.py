"""The notice pages, inside the handover namespace (included by urls.py)."""

from __future__ import annotations

from django.urls import path

from service.handover import notice_views

urlpatterns = [
    path("events/<int:pk>/notices/", notice_views.notice_list, name="notice_list"),
    path(
        "events/<int:pk>/notices/start/",
        notice_views.notice_run_start,
        name="notice_run_start",
    ),
    path("events/<int:pk>/links/", notice_views.owner_links, name="owner_links"),
    path(
        "notice-runs/<int:pk>/progress/",
        notice_views.notice_run_progress,
        name="notice_run_progress",
    ),
    path(
        "notice-runs/<int:pk>/letters.pdf",
        notice_views.notice_run_pdf,
        name="notice_run_pdf",
    ),
    path(
        "notice-runs/<int:pk>/delivered/",
        notice_views.letters_delivered,
        name="letters_delivered",
    ),
    path(
        "event-units/<int:pk>/notice.pdf",
        notice_views.unit_notice_pdf,
        name="unit_notice_pdf",
    ),
    path(
        "owner-links/<int:pk>/revoke/",
        notice_views.owner_link_revoke,
        name="owner_link_revoke",
    ),
]
