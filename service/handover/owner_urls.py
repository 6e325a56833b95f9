"""Owners' own pages (no login), mounted at /o/ by crm/urls.py: the personal booking
link from the 入伙通知书 (service/handover/links.py)."""

from __future__ import annotations

from django.urls import path

from service.handover import owner_views

urlpatterns = [
    path("<str:token>/", owner_views.owner_booking, name="owner_booking"),
]
