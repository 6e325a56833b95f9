from __future__ import annotations

from django.urls import path

from culture.deals import views

app_name = "deals"

urlpatterns = [
    path("", views.deal_list, name="deal_list"),
    path("board/", views.pipeline, name="pipeline"),
    path("new/", views.deal_create, name="deal_create"),
    path("import/", views.import_upload, name="import_upload"),
    path("import/template/", views.import_template, name="import_template"),
    path("customer-options/", views.customer_options, name="customer_options"),
    path("<int:pk>/", views.deal_detail, name="deal_detail"),
    path("<int:pk>/edit/", views.deal_edit, name="deal_edit"),
    path("<int:pk>/move/", views.deal_move, name="deal_move"),
    path("<int:pk>/lose/", views.deal_lose, name="deal_lose"),
    path("<int:pk>/reopen/", views.deal_reopen, name="deal_reopen"),
    path("<int:pk>/payments/", views.payment_add, name="payment_add"),
    path(
        "<int:pk>/payments/<int:payment_pk>/remove/",
        views.payment_remove,
        name="payment_remove",
    ),
]
