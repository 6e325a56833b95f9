"""The 入伙 reports, inside the handover namespace (included by urls.py)."""

from __future__ import annotations

from django.urls import path

from service.handover import report_views

urlpatterns = [
    path(
        "events/<int:pk>/reports/daily/",
        report_views.daily_report,
        name="daily_report",
    ),
    path(
        "events/<int:pk>/reports/refusals/",
        report_views.refusal_list,
        name="refusal_list",
    ),
    path(
        "events/<int:pk>/reports/no-shows/",
        report_views.no_show_list,
        name="no_show_list",
    ),
    path(
        "events/<int:pk>/reports/not-accepted/",
        report_views.not_accepted_list,
        name="not_accepted_list",
    ),
    path(
        "rectification/",
        report_views.rectification_board,
        name="rectification_board",
    ),
    path(
        "cases/<int:pk>/acceptance.pdf",
        report_views.acceptance_form_pdf,
        name="acceptance_form_pdf",
    ),
]
