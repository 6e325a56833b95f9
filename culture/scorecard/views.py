"""The culture scorecard: the page and the cases behind a figure (managers, admins)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from crm.accounts import access
from crm.accounts.roles import Role
from crm.core import bounds
from culture.scorecard import selectors
from culture.scorecard.figures import CULTURES

SCORECARD_ROLES = (Role.MANAGER, Role.ADMIN)


def _filters(request: HttpRequest) -> tuple[selectors.Filters, dict]:
    teams = selectors.teams_for(request.user)
    segments = selectors.segments_for(request.user)
    filters = selectors.filters_from(request.GET, teams=teams, segments=segments)
    choices = {
        "teams": teams,
        "segments": segments,
        "regions": selectors.REGIONS,
        "periods": list(selectors.PERIODS.items()),
    }
    return filters, choices


@require_http_methods(["GET"])
@access.role_required(*SCORECARD_ROLES)
def scorecard(request: HttpRequest) -> HttpResponse:
    filters, choices = _filters(request)
    data = selectors.scorecard(user=request.user, filters=filters)
    data.update(choices, cultures=CULTURES, is_admin=request.user.role == Role.ADMIN)
    return render(request, "scorecard/scorecard.html", data)


@require_http_methods(["GET"])
@access.role_required(*SCORECARD_ROLES)
def cases(request: HttpRequest) -> HttpResponse:
    filters, _choices = _filters(request)
    params = bounds.Params(request.GET)
    name = params.choice("figure", selectors.DRILLS, default="unsatisfied")
    before = params.integer("before", min_value=1, max_value=bounds.ID_MAX)
    data = selectors.cases(user=request.user, name=name, filters=filters, before=before)
    return render(request, "scorecard/cases.html", data)
