"""The records behind one of the person's own figures (个人指标明细)."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from crm.accounts import access
from crm.accounts.roles import Role
from culture.scorecard import personal


@require_http_methods(["GET"])
@access.role_required(*Role.values)
def personal_detail(request: HttpRequest, figure: str) -> HttpResponse:
    if figure not in personal.FIGURES:
        raise Http404
    days = personal.period_days(request.GET)
    rows = personal.detail_rows(user=request.user, figure=figure, days=days)
    return render(
        request,
        "scorecard/personal_detail.html",
        {
            "figure": figure,
            "label": personal.LABELS[figure],
            "definition": personal.DEFINITIONS[figure],
            "days": days,
            "periods": personal.PERIODS,
            "rows": rows,
            "limit": personal.DETAIL_LIMIT,
        },
    )
