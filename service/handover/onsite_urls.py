"""入伙 on the day (issue 17): desk, stations, cases. Included by urls.py (namespace
"handover")."""

from __future__ import annotations

from django.urls import path

from service.handover import onsite_views

urlpatterns = [
    path("onsite/", onsite_views.onsite_home, name="onsite_home"),
    path("events/<int:pk>/onsite/", onsite_views.onsite_event, name="onsite_event"),
    path(
        "events/<int:pk>/onsite/check-in/",
        onsite_views.onsite_checkin,
        name="onsite_checkin",
    ),
    path(
        "events/<int:pk>/stations/",
        onsite_views.station_config,
        name="station_config",
    ),
    path(
        "events/<int:pk>/stations/add/",
        onsite_views.station_add,
        name="station_add",
    ),
    path(
        "events/<int:pk>/stations/<int:station_pk>/delete/",
        onsite_views.station_delete,
        name="station_delete",
    ),
    path(
        "events/<int:pk>/stations/<int:station_pk>/",
        onsite_views.station_page,
        name="station_page",
    ),
    path(
        "events/<int:pk>/stations/<int:station_pk>/call-next/",
        onsite_views.station_call_next,
        name="station_call_next",
    ),
    path(
        "visits/<int:pk>/<slug:action>/",
        onsite_views.visit_action,
        name="visit_action",
    ),
    path("cases/<int:pk>/", onsite_views.case_detail, name="case_detail"),
]
