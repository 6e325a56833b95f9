from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class HandoverConfig(AppConfig):
    name = "service.handover"
    label = "handover"
    verbose_name = _("入伙")

    def ready(self) -> None:
        from crm.channels import registry as channel_registry
        from crm.core import navigation
        from crm.scheduler import registry
        from customers import hooks, timeline
        from service.handover import case_timeline, notices, services

        navigation.register(
            navigation.Item(
                _("入伙"),
                "handover:event_list",
                order=30,
                group=navigation.HANDOVER,
            )
        )
        # 入伙 on the day: the desk and the stations (onsite_views.py).
        navigation.register(
            navigation.Item(
                _("现场交付"),
                "handover:onsite_home",
                roles=services.BOOKING_ROLES,
                order=31,
                group=navigation.HANDOVER,
            )
        )
        # The live board of the event under way (board_views.board_current).
        navigation.register(
            navigation.Item(
                _("交付大屏"),
                "handover:board_current",
                roles=services.EVENT_ROLES,
                order=32,
                group=navigation.HANDOVER,
            )
        )
        # The owner's timeline: check-in, the stations and the outcome of each case.
        timeline.register("handover_cases", case_timeline.case_entries)
        # The reminder goes to the customer: never sent twice, even after a crash.
        registry.register(
            services.APPOINTMENT_REMINDER,
            services.appointment_remind,
            at_most_once=True,
        )
        # A customer merge takes the duplicate's 入伙 appointments along (one seat per
        # household and event); the merge page says what will happen beforehand.
        hooks.register_merge_hook(
            services.appointments_follow_customer_merge,
            note=services.customer_merge_notes,
        )
        # Notices (notices.py): each follows its message's outcome; a watchdog action
        # queues an unfinished run again when its task was lost.
        channel_registry.on_outcome(notices.PURPOSE, notices.notice_delivery_outcome)
        registry.register(notices.WATCH, notices.notice_run_watch)
