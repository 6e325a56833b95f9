from __future__ import annotations

from django.urls import path

from culture.dashboards import views

app_name = "dashboards"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("customers/", views.drill, name="drill"),
    path("export.xlsx", views.dashboard_export, name="export"),
]
