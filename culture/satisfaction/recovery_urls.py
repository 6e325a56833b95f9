from __future__ import annotations

from django.urls import path

from culture.satisfaction import recovery_views

app_name = "recovery"

urlpatterns = [
    path("", recovery_views.task_list, name="task_list"),
    path("<int:pk>/", recovery_views.task_detail, name="task_detail"),
    path("<int:pk>/record/", recovery_views.task_record, name="task_record"),
]
