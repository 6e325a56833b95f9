"""The service desk's kinds of scheduled action and the handlers that carry them out."""

from __future__ import annotations

from service import services

HANDLERS = {
    services.SLA_WARNING: services.sla_escalate,
    services.SLA_BREACH: services.sla_escalate,
    services.SLA_MANAGER: services.sla_escalate,
    services.WORKORDER_OVERDUE: services.workorder_overdue,
    services.WORKORDER_CREATED: services.workorder_announce,
}

# Kinds whose chunks are delivered at once (crm.scheduler.registry, batch_handler).
BATCH_HANDLERS = {kind: services.sla_escalate_many for kind in services.SLA_KINDS}
