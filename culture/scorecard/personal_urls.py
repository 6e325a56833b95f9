from __future__ import annotations

from django.urls import path

from culture.scorecard import personal_views

app_name = "scorecard_personal"

urlpatterns = [
    path("<slug:figure>/", personal_views.personal_detail, name="detail"),
]
