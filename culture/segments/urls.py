from __future__ import annotations

from django.urls import path

from culture.segments import views

app_name = "segments"

urlpatterns = [
    path("", views.segment_list, name="segment_list"),
    path("new/", views.segment_create, name="segment_create"),
    path("builder/", views.segment_builder, name="segment_builder"),
    path("count/", views.segment_count, name="segment_count"),
    path("<int:pk>/", views.segment_detail, name="segment_detail"),
    path("<int:pk>/edit/", views.segment_edit, name="segment_edit"),
    path("<int:pk>/delete/", views.segment_delete, name="segment_delete"),
    path("<int:pk>/refresh/", views.segment_refresh, name="segment_refresh"),
    path("<int:pk>/search/", views.static_search, name="static_search"),
    path("<int:pk>/add/", views.static_add, name="static_add"),
    path("<int:pk>/remove/", views.static_remove, name="static_remove"),
    path("<int:pk>/followups/", views.segment_followups, name="segment_followups"),
    path("<int:pk>/reassign/", views.segment_reassign, name="segment_reassign"),
]
