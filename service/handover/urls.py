from __future__ import annotations

from django.urls import include, path

from service.handover import readiness_urls, views

app_name = "handover"

urlpatterns = [
    path("", views.event_list, name="event_list"),
    path("events/new/", views.event_create, name="event_create"),
    path("events/<int:pk>/", views.event_detail, name="event_detail"),
    path("events/<int:pk>/edit/", views.event_edit, name="event_edit"),
    path("events/<int:pk>/publish/", views.event_publish, name="event_publish"),
    path("events/<int:pk>/close/", views.event_close, name="event_close"),
    path("events/<int:pk>/slots/new/", views.slots_add, name="slots_add"),
    path("events/<int:pk>/book/", views.appointment_book, name="appointment_book"),
    path("slots/<int:pk>/", views.slot_detail, name="slot_detail"),
    path(
        "appointments/<int:pk>/cancel/",
        views.appointment_cancel,
        name="appointment_cancel",
    ),
    path(
        "appointments/<int:pk>/reschedule/",
        views.appointment_reschedule,
        name="appointment_reschedule",
    ),
    path(
        "appointments/<int:pk>/check-in/",
        views.appointment_check_in,
        name="appointment_check_in",
    ),
    path("", include(readiness_urls)),
    # 入伙通知书: runs, notices, owners' links, PDFs (notice_urls.py).
    path("", include("service.handover.notice_urls")),
]
