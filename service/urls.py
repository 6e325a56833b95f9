from __future__ import annotations

from django.urls import path

from service import views

app_name = "service"

urlpatterns = [
    path("", views.ticket_queue, name="ticket_queue"),
    path("new/", views.ticket_create, name="ticket_create"),
    path("t/<str:reference>/", views.ticket_detail, name="ticket_detail"),
    path("t/<str:reference>/reply/", views.ticket_reply, name="ticket_reply"),
    path("t/<str:reference>/canned/", views.canned_reply, name="canned_reply"),
    path(
        "t/<str:reference>/attachments/",
        views.attachment_upload,
        name="attachment_upload",
    ),
    path("t/<str:reference>/assign/", views.ticket_assign, name="ticket_assign"),
    path(
        "t/<str:reference>/transition/",
        views.ticket_transition,
        name="ticket_transition",
    ),
    path("t/<str:reference>/link/", views.ticket_link, name="ticket_link"),
    path("t/<str:reference>/merge/", views.ticket_merge, name="ticket_merge"),
    path(
        "t/<str:reference>/workorders/",
        views.workorder_create,
        name="workorder_create",
    ),
    path(
        "attachments/<int:pk>/",
        views.attachment_download,
        name="attachment_download",
    ),
    path(
        "messages/<int:pk>/delivery/",
        views.message_delivery,
        name="message_delivery",
    ),
    path("workorders/", views.workorder_list, name="workorder_list"),
    path("workorders/<int:pk>/", views.workorder_detail, name="workorder_detail"),
    path("workorders/<int:pk>/rate/", views.workorder_rate, name="workorder_rate"),
    path("assets/new/", views.asset_create, name="asset_create"),
    path("assets/<int:pk>/", views.asset_detail, name="asset_detail"),
    path("dealers/", views.dealer_report, name="dealer_report"),
]
