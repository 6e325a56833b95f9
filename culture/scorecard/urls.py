from __future__ import annotations

from django.urls import path

from culture.scorecard import views

app_name = "scorecard"

urlpatterns = [
    path("", views.scorecard, name="scorecard"),
    path("cases/", views.cases, name="cases"),
]
