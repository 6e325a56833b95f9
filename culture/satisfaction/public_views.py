"""The customer's survey page behind the personal link (mobile-first, Chinese, no
login): the question as big tap targets, one tap records the score, an optional
comment on the same form.

The link is the key (links.py): a tampered one answers 404, an expired one 410, an
answered one the thank-you page (a second answer is never recorded). Every POST counts
against the client address's hourly limit (crm/core/limits.py), as on /o/ and /report/t/.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from crm.accounts import access
from crm.core import bounds, limits, network
from culture.satisfaction import links, services
from culture.satisfaction.models import Survey, SurveyKind

HOUR = dt.timedelta(hours=1)


def _thanks(
    request: HttpRequest, survey: Survey | None, *, again: bool
) -> HttpResponse:
    return render(
        request,
        "satisfaction/public/thanks.html",
        {"survey": survey, "again": again},
    )


def _gone(request: HttpRequest, reason: str) -> HttpResponse:
    return render(
        request,
        "satisfaction/public/link_error.html",
        {"reason": reason},
        status=410 if reason == "expired" else 404,
    )


@access.public
@never_cache
@require_http_methods(["GET", "POST"])
def survey_answer(request: HttpRequest, token: str) -> HttpResponse:
    if request.method == "POST":
        address = network.client_ip(request) or ""
        limit = settings.KEHU_SURVEY_PER_IP_HOUR
        if not limits.take("survey-ip", address, limit=limit, window=HOUR):
            return render(request, "satisfaction/public/too_many.html", status=429)
    try:
        survey = links.open_link(token)
    except links.LinkError as error:
        if error.reason == "answered":
            return _thanks(request, error.survey, again=True)
        return _gone(request, error.reason)
    scale = list(services.score_range(survey.kind))
    error = ""
    status = 200
    if request.method == "POST":
        params = bounds.Params(request.POST)
        score = params.integer("score", min_value=scale[0], max_value=scale[-1])
        comment = params.text("comment", max_length=services.COMMENT_MAX)
        if score is None:
            error, status = _no_score(), 400
        else:
            try:
                answered = services.survey_answer(
                    survey=survey, score=score, comment=comment
                )
            except services.AnswerRefused as refused:
                if refused.reason == "answered":
                    return _thanks(request, survey, again=True)
                return _gone(request, "expired")
            except ValidationError:
                error, status = _no_score(), 400
            else:
                return _thanks(request, answered, again=False)
    return render(
        request,
        "satisfaction/public/answer.html",
        {
            "survey": survey,
            "scale": scale,
            "is_nps": survey.kind == SurveyKind.NPS,
            "error": error,
            "comment_max": services.COMMENT_MAX,
        },
        status=status,
    )


def _no_score() -> str:
    from django.utils.translation import gettext as _

    return _("请点选一个分数。")
