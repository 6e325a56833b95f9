"""/settings/desk/: the desk's sections of the settings area (admins only)."""

from __future__ import annotations

from crm.core import crud_views
from service import admin_views

app_name = "service_admin"

urlpatterns = crud_views.resource_urls(admin_views.RESOURCES)
