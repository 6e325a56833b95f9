from __future__ import annotations

app_name = "handover"

urlpatterns: list = []
