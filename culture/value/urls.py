from __future__ import annotations

from django.urls import path, re_path

from culture.value import views

app_name = "value"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("core/", views.core_list, name="core_list"),
    re_path(
        r"^changes/(?P<which>entered|left|stayed)/$",
        views.changes_list,
        name="changes_list",
    ),
    path("rfm/<int:r>/<int:f>/", views.rfm_cell, name="rfm_cell"),
    path("tiers/", views.tier_change_list, name="tier_change_list"),
    re_path(
        r"^export/(?P<table>core|entered|left|stayed|rfm|tiers)\.xlsx$",
        views.export,
        name="export",
    ),
]
