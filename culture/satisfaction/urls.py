from __future__ import annotations

from django.urls import path

from culture.satisfaction import views

app_name = "satisfaction"

urlpatterns = [
    path("surveys/", views.survey_list, name="survey_list"),
    path("campaigns/", views.campaign_list, name="campaign_list"),
    path("campaigns/new/", views.campaign_create, name="campaign_create"),
    path("campaigns/<int:pk>/", views.campaign_detail, name="campaign_detail"),
    path(
        "campaigns/<int:pk>/progress/",
        views.campaign_progress,
        name="campaign_progress",
    ),
]
