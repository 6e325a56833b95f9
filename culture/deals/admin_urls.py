"""/settings/deals/: the deal stages in the settings area (admins only)."""

from __future__ import annotations

from crm.core import crud_views
from culture.deals import admin_views

app_name = "deals_admin"

urlpatterns = crud_views.resource_urls(admin_views.RESOURCES)
