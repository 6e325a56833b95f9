"""The check-in desk's side of the owner's QR code: scan or type the code, see the
appointment, press 签到 (appointment_check_in decides whether it may be done).

Any staff role works the desk. The signed code is what names the appointment (the
owner shows it), so the desk finds owners of every team; their phone is masked for
roles that may not see it. Anonymous users are sent to the login page and learn
nothing about the code.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from crm.accounts import access
from crm.accounts.roles import Role
from crm.core import bounds
from customers import masking
from service.handover import checkin_codes, onsite, services
from service.handover.models import Appointment

STAFF_ROLES = tuple(Role.values)


def _appointment_for(code: str) -> Appointment | None:
    pk = checkin_codes.appointment_id_from(code)
    if pk is None:
        return None
    return (
        Appointment.objects.select_related(
            "slot", "event", "customer", "event_unit__unit__building"
        )
        .filter(pk=pk)
        .first()
    )


@require_http_methods(["GET", "POST"])
@access.role_required(*STAFF_ROLES)
def desk_check_in(request: HttpRequest) -> HttpResponse:
    source = request.POST if request.method == "POST" else request.GET
    code = bounds.Params(source).text("code", max_length=checkin_codes.CODE_MAX)
    appointment = _appointment_for(code) if code else None
    error, status = "", 200
    if code and appointment is None:
        error, status = _("签到码无效：请重新扫描，或核对手输的签到码。"), 404
    elif request.method == "POST" and appointment is not None:
        try:
            # Opens the unit's handover case too (issue 17), in the same transaction.
            onsite.check_in(appointment, by=request.user)
        except services.BookingError as exc:
            error, status = exc.message, 409
        except PermissionDenied:
            error, status = _("您没有为业主签到的权限。"), 403
        else:
            query = urlencode(
                {"code": checkin_codes.code_for(appointment.pk), "done": "1"}
            )
            return redirect(f"{reverse('handover:desk_check_in')}?{query}")
        appointment.refresh_from_db()
    context = {
        "code": checkin_codes.code_for(appointment.pk) if appointment else code,
        "appointment": appointment,
        "error": error,
        "done": bounds.params(request).flag("done") and appointment is not None,
        "phone": (
            appointment.customer.phone
            if appointment and masking.can_see_pii(request.user)
            else masking.mask_phone(appointment.customer.phone if appointment else "")
        ),
    }
    return render(request, "handover/desk_check_in.html", context, status=status)
