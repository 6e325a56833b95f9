from __future__ import annotations

from django.urls import path

from crm.scheduler import views

app_name = "scheduler"

urlpatterns = [
    path("", views.action_review, name="action_review"),
    path("<int:pk>/retry/", views.action_retry, name="action_retry"),
    path("<int:pk>/cancel/", views.action_cancel, name="action_cancel"),
]
