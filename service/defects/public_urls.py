"""/c/: the contractors' own pages (signed, expiring links; no login)."""

from __future__ import annotations

from django.urls import path

from service.defects import views

urlpatterns = [
    path("<str:token>/", views.contractor_items, name="contractor_items"),
]
