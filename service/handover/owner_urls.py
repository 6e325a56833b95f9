"""Owners' own pages (no login), mounted at /o/ by crm/urls.py: the personal booking
link from the 入伙通知书 (service/handover/links.py)."""

from __future__ import annotations

from django.urls import path

from service.handover import owner_views

urlpatterns = [
    path("<str:token>/", owner_views.owner_booking, name="owner_booking"),
    path("<str:token>/change/", owner_views.owner_change, name="owner_change"),
    path("<str:token>/cancel/", owner_views.owner_cancel, name="owner_cancel"),
    path("<str:token>/qr.png", owner_views.owner_qr, name="owner_qr"),
]
