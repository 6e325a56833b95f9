"""/settings/defects/: contractors and the defect category tree (admins only)."""

from __future__ import annotations

from crm.core import crud_views
from service.defects import admin_views

app_name = "defects_admin"

urlpatterns = crud_views.resource_urls(admin_views.RESOURCES)
