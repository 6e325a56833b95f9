from __future__ import annotations

from django.urls import include, path

from service.handover import desk_views, readiness_urls, scope_views, views

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
    path("events/<int:pk>/scope/", scope_views.event_scope, name="event_scope"),
    path("events/<int:pk>/scope/add/", scope_views.scope_add, name="scope_add"),
    path("events/<int:pk>/scope/bulk/", scope_views.scope_bulk, name="scope_bulk"),
    path("events/<int:pk>/batches/", scope_views.batch_list, name="batch_list"),
    path("events/<int:pk>/batches/new/", scope_views.batch_create, name="batch_create"),
    path("batches/<int:pk>/edit/", scope_views.batch_edit, name="batch_edit"),
    path("batches/<int:pk>/delete/", scope_views.batch_delete, name="batch_delete"),
    path("batches/<int:pk>/assign/", scope_views.batch_assign, name="batch_assign"),
    path(
        "batches/<int:pk>/slots/new/",
        scope_views.batch_slots_add,
        name="batch_slots_add",
    ),
    # The desk scans or types the code of the owner's QR code (checkin_codes.py).
    path("check-in/", desk_views.desk_check_in, name="desk_check_in"),
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
    # 入伙 on the day: desk, stations, cases (onsite_urls.py).
    path("", include("service.handover.onsite_urls")),
    # 交付大屏: the live board and its polled fragments (board_urls.py).
    path("", include("service.handover.board_urls")),
    # 入伙 station captures and case outcomes (capture_urls.py).
    path("", include("service.handover.capture_urls")),
    # 入伙通知书: runs, notices, owners' links, PDFs (notice_urls.py).
    path("", include("service.handover.notice_urls")),
    # Reports: daily report, rectification board, refusals, no-shows, acceptance PDF.
    path("", include("service.handover.report_urls")),
]
