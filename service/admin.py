from __future__ import annotations

from django.contrib import admin

from service.models import (
    Asset,
    CalendarDay,
    CannedReply,
    Category,
    SLAPolicy,
    WorkingPeriod,
)


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ("__str__", "parent", "team")
    list_select_related = ("parent__parent", "team")
    list_filter = ("team",)
    search_fields = ("name",)


@admin.register(SLAPolicy)
class SLAPolicyAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "ticket_type",
        "priority",
        "for_key_accounts",
        "first_response_minutes",
        "resolution_minutes",
        "warn_before_minutes",
    )
    list_filter = ("ticket_type", "priority", "for_key_accounts")
    list_editable = (
        "first_response_minutes",
        "resolution_minutes",
        "warn_before_minutes",
    )


@admin.register(WorkingPeriod)
class WorkingPeriodAdmin(admin.ModelAdmin):
    list_display = ("weekday", "start", "end")
    list_editable = ("start", "end")
    list_display_links = ("weekday",)


@admin.register(CalendarDay)
class CalendarDayAdmin(admin.ModelAdmin):
    """Holidays and 调休 working weekends: edited here when next year's plan is out."""

    list_display = ("date", "is_working", "note")
    list_editable = ("is_working", "note")
    list_filter = ("is_working",)
    date_hierarchy = "date"
    search_fields = ("note",)


@admin.register(CannedReply)
class CannedReplyAdmin(admin.ModelAdmin):
    list_display = ("title",)
    search_fields = ("title", "body")


@admin.register(Asset)
class AssetAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "kind",
        "customer",
        "serial",
        "delivered_on",
        "warranty_until",
        "dealer",
    )
    list_filter = ("kind",)
    list_select_related = ("customer", "dealer")
    search_fields = ("name", "serial")
    raw_id_fields = ("customer", "dealer")
