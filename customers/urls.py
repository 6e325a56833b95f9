from __future__ import annotations

from django.urls import path

from customers import io_views, views

app_name = "customers"

urlpatterns = [
    path("", views.customer_list, name="customer_list"),
    path("new/", views.customer_create, name="customer_create"),
    path(
        "organizations/options/",
        views.organization_options,
        name="organization_options",
    ),
    path("reassign/", views.customer_reassign, name="customer_reassign"),
    path("duplicates/check/", views.duplicate_check, name="duplicate_check"),
    path("pool/", views.pool_list, name="pool_list"),
    path("pool/<int:pk>/", views.pool_preview, name="pool_preview"),
    path("<int:pk>/", views.customer_detail, name="customer_detail"),
    path("<int:pk>/edit/", views.customer_edit, name="customer_edit"),
    path("<int:pk>/merge/", views.customer_merge, name="customer_merge"),
    path(
        "<int:pk>/profile/", views.customer_profile_edit, name="customer_profile_edit"
    ),
    path("<int:pk>/timeline/", views.customer_timeline, name="customer_timeline"),
    path("<int:pk>/contacts/", views.contact_create, name="contact_create"),
    path("<int:pk>/followups/new/", views.followup_create, name="followup_create"),
    path("<int:pk>/reveal/", views.customer_reveal, name="customer_reveal"),
    path("<int:pk>/claim/", views.pool_claim, name="pool_claim"),
    path("<int:pk>/release/", views.pool_release, name="pool_release"),
    path("<int:pk>/verify/", views.customer_verify, name="customer_verify"),
    path(
        "<int:pk>/reviewed/", views.customer_review_clear, name="customer_review_clear"
    ),
    path("followups/<int:pk>/done/", views.followup_complete, name="followup_complete"),
]

# Import and export (customers/io_views.py).
urlpatterns += [
    path("import/", io_views.import_upload, name="import_upload"),
    path("import/template.csv", io_views.import_template, name="import_template"),
    path("import/<int:pk>/", io_views.import_job_detail, name="import_job_detail"),
    path(
        "import/<int:pk>/progress/",
        io_views.import_job_progress,
        name="import_job_progress",
    ),
    path(
        "import/<int:pk>/confirm/",
        io_views.import_job_confirm,
        name="import_job_confirm",
    ),
    path(
        "import/<int:pk>/cancel/", io_views.import_job_cancel, name="import_job_cancel"
    ),
    path(
        "import/<int:pk>/report.csv",
        io_views.import_job_report,
        name="import_job_report",
    ),
    path("export/", io_views.export_confirm, name="export_confirm"),
    path("export/download/", io_views.export_download, name="export_download"),
    path(
        "export/request/",
        io_views.export_request_create,
        name="export_request_create",
    ),
    path("export/requests/", io_views.export_requests, name="export_requests"),
    path(
        "export/requests/<int:pk>/",
        io_views.export_request_detail,
        name="export_request_detail",
    ),
    path(
        "export/requests/<int:pk>/decide/",
        io_views.export_request_decide,
        name="export_request_decide",
    ),
    path(
        "export/requests/<int:pk>/download/",
        io_views.export_request_download,
        name="export_request_download",
    ),
]
