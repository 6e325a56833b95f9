"""/segments/<id>/dashboard/: the segment dashboard (issue 14, part 4), beside the
segment app's own pages (culture/segments/urls.py)."""

from __future__ import annotations

from django.urls import path

from culture.value import segment_views

app_name = "segment_dashboard"

urlpatterns = [
    path("", segment_views.segment_dashboard, name="dashboard"),
    path("members/", segment_views.segment_dashboard_members, name="members"),
    path("export.xlsx", segment_views.segment_dashboard_export, name="export"),
]
