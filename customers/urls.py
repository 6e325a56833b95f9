from __future__ import annotations

from django.urls import path

from customers import views

app_name = "customers"

urlpatterns = [
    path("", views.customer_list, name="customer_list"),
    path("new/", views.customer_create, name="customer_create"),
    path("reassign/", views.customer_reassign, name="customer_reassign"),
    path("pool/", views.pool_list, name="pool_list"),
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
    path("followups/<int:pk>/done/", views.followup_complete, name="followup_complete"),
]
