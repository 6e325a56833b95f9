from __future__ import annotations

from django.urls import path

from service.property import views

app_name = "property"

urlpatterns = [
    path("", views.project_list, name="project_list"),
    path("new/", views.project_create, name="project_create"),
    path("import/", views.import_upload, name="import_upload"),
    path("import/template.csv", views.import_template, name="import_template"),
    path("<int:pk>/", views.project_detail, name="project_detail"),
    path("<int:pk>/edit/", views.project_edit, name="project_edit"),
    path("<int:pk>/phases/new/", views.phase_create, name="phase_create"),
    path(
        "phases/<int:pk>/buildings/new/", views.building_create, name="building_create"
    ),
    path("buildings/<int:pk>/", views.building_detail, name="building_detail"),
    path("buildings/<int:pk>/edit/", views.building_edit, name="building_edit"),
    path("buildings/<int:pk>/units/new/", views.unit_create, name="unit_create"),
    path("units/<int:pk>/", views.unit_detail, name="unit_detail"),
    path("units/<int:pk>/edit/", views.unit_edit, name="unit_edit"),
    path("units/<int:pk>/owners/new/", views.owner_add, name="owner_add"),
    path("units/<int:pk>/proxies/new/", views.proxy_add, name="proxy_add"),
    path("owners/<int:pk>/end/", views.owner_end, name="owner_end"),
    path("proxies/<int:pk>/revoke/", views.proxy_revoke, name="proxy_revoke"),
    path("proxies/<int:pk>/document/", views.proxy_document, name="proxy_document"),
]
