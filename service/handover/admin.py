from __future__ import annotations

from typing import Any

from django.contrib import admin

from service.handover.models import Appointment, HandoverEvent, TimeSlot


class ReadOnlyAdmin(admin.ModelAdmin):
    """Look, don't touch: a change here would bypass the seat counter and the audit
    context that the services keep (docs/handover.md)."""

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(HandoverEvent)
class HandoverEventAdmin(ReadOnlyAdmin):
    list_display = ("name", "project_name", "start_date", "end_date", "status")
    list_filter = ("status",)
    search_fields = ("name", "project_name")


@admin.register(TimeSlot)
class TimeSlotAdmin(ReadOnlyAdmin):
    list_display = (
        "event",
        "date",
        "start_time",
        "end_time",
        "booked_count",
        "capacity",
    )
    list_select_related = ("event",)
    list_filter = ("date",)


@admin.register(Appointment)
class AppointmentAdmin(ReadOnlyAdmin):
    list_display = ("customer", "slot", "unit", "state", "channel", "created_at")
    list_select_related = ("customer", "slot__event")
    list_filter = ("state", "channel")
    raw_id_fields = ("customer", "slot", "event")
