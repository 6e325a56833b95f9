"""/defects/: the defect pages (staff)."""

from __future__ import annotations

from django.urls import path

from service.defects import views

app_name = "defects"

urlpatterns = [
    path("", views.defect_list, name="defect_list"),
    path("<int:pk>/", views.defect_detail, name="defect_detail"),
    path("photos/<int:pk>/", views.defect_photo, name="defect_photo"),
    path("<int:pk>/due/", views.defect_due, name="defect_due"),
    path(
        "<int:pk>/do/<str:action>/", views.defect_transition, name="defect_transition"
    ),
    path(
        "<int:pk>/ticket/new/", views.defect_ticket_create, name="defect_ticket_create"
    ),
    path("<int:pk>/ticket/link/", views.defect_ticket_link, name="defect_ticket_link"),
    # Recording: from a handover case (the station pages link here), by unit, or from
    # a repair ticket (warranty).
    path("record/case/<int:case_id>/", views.defect_record, name="record"),
    path("record/unit/<int:unit_id>/", views.defect_record_unit, name="record_unit"),
    path(
        "record/ticket/<str:reference>/<int:unit_id>/",
        views.defect_record_ticket,
        name="record_ticket",
    ),
    path("categories/options/", views.category_options, name="category_options"),
    path("contractors/<int:pk>/", views.contractor_detail, name="contractor_detail"),
]
