"""Staff pages: the list of surveys and the campaigns to a segment (managers, admins)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from crm.accounts import access
from crm.core import bounds
from crm.core.once import submit_once
from crm.core.pagination import paginate
from culture.satisfaction import selectors, services
from culture.satisfaction.forms import CampaignForm
from culture.satisfaction.models import Campaign, Survey, SurveyKind
from customers import masking

PAGE_SIZE = 50
ROLES = services.CAMPAIGN_ROLES


@require_http_methods(["GET"])
@access.role_required(*ROLES)
def survey_list(request: HttpRequest) -> HttpResponse:
    params = bounds.params(request)
    filters = {
        "status": params.choice("status", Survey.Status.values),
        "source": params.choice("source", Survey.Source.values),
        "kind": params.choice("kind", SurveyKind.values),
        "since": params.date("since"),
        "until": params.date("until"),
    }
    page = paginate(
        selectors.surveys_for(user=request.user, **filters), params.page(), PAGE_SIZE
    )
    shown = masking.can_see_pii(request.user)
    for survey in page.object_list:
        phone = survey.customer.phone
        survey.phone_shown = phone if shown else masking.mask_phone(phone or "")
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "satisfaction/survey_list.html",
        {
            "page": page,
            "filters": filters,
            "statuses": Survey.Status.choices,
            "sources": Survey.Source.choices,
            "kinds": SurveyKind.choices,
            "querystring": query.urlencode(),
        },
    )


@require_http_methods(["GET"])
@access.role_required(*ROLES)
def campaign_list(request: HttpRequest) -> HttpResponse:
    page = paginate(
        selectors.campaigns_for(request.user), bounds.params(request).page(), PAGE_SIZE
    )
    return render(request, "satisfaction/campaign_list.html", {"page": page})


@require_http_methods(["GET", "POST"])
@access.role_required(*ROLES)
@submit_once
def campaign_create(request: HttpRequest) -> HttpResponse:
    form = CampaignForm(
        request.POST if request.method == "POST" else None, user=request.user
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            campaign = services.campaign_create(
                by=request.user,
                name=data["name"],
                segment=data["segment"],
                kind=data["kind"],
                channel=data["channel"],
            )
        except ValidationError as error:
            for field, errors in error.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, _("定向调查已开始发送。"))
            return redirect("satisfaction:campaign_detail", pk=campaign.pk)
    return render(
        request,
        "satisfaction/campaign_form.html",
        {"form": form},
        status=400 if form.errors else 200,
    )


def _campaign(request: HttpRequest, pk: int) -> Campaign:
    campaign = selectors.campaigns_for(request.user).filter(pk=pk).first()
    if campaign is None:
        raise Http404
    campaign.percent = selectors.campaign_percent(campaign)
    campaign.is_running = campaign.status in (
        Campaign.Status.QUEUED,
        Campaign.Status.RUNNING,
    )
    return campaign


@require_http_methods(["GET"])
@access.role_required(*ROLES)
def campaign_detail(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = _campaign(request, pk)
    answered = campaign.surveys.filter(answered_at__isnull=False).count()
    return render(
        request,
        "satisfaction/campaign_detail.html",
        {"campaign": campaign, "answered": answered},
    )


@require_http_methods(["GET"])
@access.role_required(*ROLES)
def campaign_progress(request: HttpRequest, pk: int) -> HttpResponse:
    if not services.can_run_campaigns(request.user):
        raise PermissionDenied
    return render(
        request,
        "satisfaction/_campaign_progress.html",
        {"campaign": _campaign(request, pk)},
    )
