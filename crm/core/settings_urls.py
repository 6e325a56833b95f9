"""The settings area (/settings/): its index and the platform's own sections."""

from __future__ import annotations

from django.urls import path

from crm.accounts import admin_views
from crm.core import crud_views

app_name = "settings"

urlpatterns = [
    path("", crud_views.settings_index, name="index"),
    path("users/<int:pk>/away/", admin_views.user_away, name="user_away"),
    *admin_views.urlpatterns_resources,
]
