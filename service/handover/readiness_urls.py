from __future__ import annotations

from django.urls import path

from service.handover import readiness_views

# Included by service/handover/urls.py (namespace "handover").
urlpatterns = [
    path(
        "events/<int:pk>/readiness/",
        readiness_views.event_readiness,
        name="event_readiness",
    ),
    path("events/<int:pk>/calls/", readiness_views.call_list, name="call_list"),
    path(
        "events/<int:pk>/calls/<int:unit_pk>/record/",
        readiness_views.call_record,
        name="call_record",
    ),
    path(
        "events/<int:pk>/calls/<int:unit_pk>/dial/<int:customer_pk>/",
        readiness_views.call_dial,
        name="call_dial",
    ),
]
