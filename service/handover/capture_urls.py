"""The station captures and the case's outcomes (capture_views.py)."""

from __future__ import annotations

from django.urls import path

from service.handover import capture_views as views

urlpatterns = [
    path("cases/<int:pk>/outcome/", views.case_outcome, name="case_outcome"),
    path(
        "cases/<int:pk>/outcome/panel/",
        views.case_outcome_panel,
        name="case_outcome_panel",
    ),
    path("cases/<int:pk>/outcome/accept/", views.case_accept, name="case_accept"),
    path(
        "cases/<int:pk>/outcome/not-accepted/",
        views.case_not_accepted,
        name="case_not_accepted",
    ),
    path(
        "cases/<int:pk>/outcome/reinspection/",
        views.case_reinspection_book,
        name="case_reinspection_book",
    ),
    path("cases/<int:pk>/outcome/refuse/", views.case_refuse, name="case_refuse"),
    path(
        "cases/<int:pk>/outcome/no-show/",
        views.case_no_show_next,
        name="case_no_show_next",
    ),
    path(
        "refusal-evidence/<int:pk>/",
        views.refusal_evidence,
        name="refusal_evidence",
    ),
    path(
        "cases/<int:pk>/capture/settlement/",
        views.capture_settlement,
        name="capture_settlement",
    ),
    path("cases/<int:pk>/capture/fees/", views.capture_fee_add, name="capture_fee_add"),
    path("fee-lines/<int:pk>/void/", views.capture_fee_void, name="capture_fee_void"),
    path("cases/<int:pk>/signature/", views.case_signature, name="case_signature"),
    path("cases/<int:pk>/capture/meters/", views.capture_meters, name="capture_meters"),
    path("cases/<int:pk>/capture/keys/", views.capture_keys, name="capture_keys"),
    path(
        "cases/<int:pk>/capture/signature/",
        views.capture_signature,
        name="capture_signature",
    ),
    path("cases/<int:pk>/capture/survey/", views.capture_survey, name="capture_survey"),
]
