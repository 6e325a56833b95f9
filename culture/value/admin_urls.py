"""/settings/value/: the tier rules (admins only)."""

from __future__ import annotations

from crm.core import crud_views
from culture.value import admin_views

app_name = "value_admin"

urlpatterns = crud_views.resource_urls(admin_views.RESOURCES)
