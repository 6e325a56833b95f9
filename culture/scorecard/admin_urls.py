"""/settings/scorecard/: the culture scorecard's targets (admins only)."""

from __future__ import annotations

from crm.core import crud_views
from culture.scorecard import admin_views

app_name = "scorecard_admin"

urlpatterns = crud_views.resource_urls(admin_views.RESOURCES)
