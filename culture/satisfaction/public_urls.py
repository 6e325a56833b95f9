"""The customer's survey page (no login), mounted at /s/ by crm/urls.py; outside any
namespace, like /report/ and /o/ (the sign-in middleware lets @access.public through)."""

from __future__ import annotations

from django.urls import path

from culture.satisfaction import public_views

urlpatterns = [
    path("<str:token>/", public_views.survey_answer, name="survey_answer"),
]
