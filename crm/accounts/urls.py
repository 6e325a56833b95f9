from __future__ import annotations

from django.urls import path

from crm.accounts import admin_views, views

app_name = "accounts"

urlpatterns = [
    path("two-step/", views.two_step_settings, name="two_step"),
    path("two-step/enrol/", views.two_step_enrol, name="two_step_enrol"),
    path("two-step/verify/", views.two_step_verify, name="two_step_verify"),
    path(
        "two-step/backup-codes/",
        views.backup_codes_regenerate,
        name="backup_codes_regenerate",
    ),
    path("two-step/remove/", views.two_step_remove, name="two_step_remove"),
    path("sessions/end-others/", views.sessions_end_others, name="sessions_end_others"),
    path("away/", admin_views.away_self, name="away_self"),
]
