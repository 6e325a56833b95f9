"""The weekly culture report's PDF, downloaded from the scorecard page."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_http_methods

from crm.accounts import access
from crm.accounts.roles import Role
from crm.core import bounds
from culture.scorecard import weekly_report


@require_http_methods(["GET"])
@access.role_required(Role.MANAGER, Role.ADMIN)
def report_pdf(request: HttpRequest) -> HttpResponse:
    """?week=YYYY-Www, by default the last week whose report is due."""
    key = bounds.Params(request.GET).text("week", max_length=8)
    try:
        weekly_report.week_days(key)
    except ValueError:
        key = weekly_report.last_week_key()
    report = weekly_report.report_data(user=request.user, key=key)
    response = HttpResponse(
        weekly_report.render_pdf(report), content_type="application/pdf"
    )
    response["Content-Disposition"] = (
        f'attachment; filename="{weekly_report.filename(key)}"'
    )
    return response
