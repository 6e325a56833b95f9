from __future__ import annotations

from django.urls import path

from culture.scorecard import report_views

app_name = "scorecard_report"

urlpatterns = [
    path("report.pdf", report_views.report_pdf, name="pdf"),
]
