from __future__ import annotations

from django.contrib import admin

from customers.models import Customer


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "stage", "tier", "owner", "team", "updated_at")
    list_filter = ("kind", "stage", "tier")
    list_select_related = ("owner", "team")
    search_fields = ("name",)
    raw_id_fields = ("owner",)
