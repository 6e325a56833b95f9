from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class SatisfactionConfig(AppConfig):
    name = "culture.satisfaction"
    label = "satisfaction"
    verbose_name = _("满意度与服务补救")

    def ready(self) -> None:
        from crm.core import navigation
        from crm.scheduler import registry
        from culture.satisfaction import recovery_setup, services
        from culture.satisfaction import timeline as survey_timeline
        from customers import hooks, timeline
        from service import events as service_events
        from service import panels as ticket_panels
        from service.handover import events as handover_events

        recovery_setup.register()
        service_events.on_ticket_resolved(services.on_ticket_resolved)
        handover_events.on_handover_finished(services.on_handover_finished)
        # The reminder's message has its own key and the survey its reminded_at: a
        # second delivery sends nothing. A campaign run goes on where it stopped.
        registry.register(services.REMIND, services.survey_remind)
        registry.register(services.CAMPAIGN_RUN, services.campaign_run)
        hooks.register_merge_hook(services.merge_surveys)
        timeline.register("surveys", survey_timeline.survey_entries)
        ticket_panels.register(
            ticket_panels.Panel(
                "survey", "satisfaction/_ticket_panel.html", _ticket_panel, order=50
            )
        )
        navigation.register(
            navigation.Item(
                pgettext_lazy("navigation", "满意度"),
                "satisfaction:survey_list",
                roles=services.CAMPAIGN_ROLES,
                order=70,
                group=navigation.ANALYSIS,
            )
        )


def _ticket_panel(user: object, ticket: object) -> dict | None:
    """The ticket's survey: sent or not, the score and the comment (one query)."""
    from culture.satisfaction.models import CSAT_MAX, NPS_MAX, Survey, SurveyKind

    survey = Survey.objects.filter(ticket=ticket, source=Survey.Source.TICKET).first()
    scale = NPS_MAX if survey and survey.kind == SurveyKind.NPS else CSAT_MAX
    return {"survey": survey, "scale": scale}
