"""The service desk's public pages (no login), mounted at /report/ by crm/urls.py.

Outside the `service` namespace so that the name stays `intake`: the sign-in
middleware lets it through before the second step (crm/accounts/middleware.py).
"""

from __future__ import annotations

from django.urls import path

from service import views

urlpatterns = [
    path("", views.intake, name="intake"),
    # The customer's personal link to one ticket (signed, expiring; no login).
    path("t/<str:token>/", views.intake_follow, name="intake_follow"),
]
