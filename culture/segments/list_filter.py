"""`?segment=<id>` on the customer list (and its exports): the segment's current
members, for segments the user may see; any other id is a form error."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import Exists, OuterRef
from django.utils.translation import gettext_lazy as _

from culture.segments.models import Segment, SegmentMember


def field(user: Any) -> forms.Field:
    return forms.ModelChoiceField(
        label=_("客户分群"),
        queryset=Segment.objects.visible_to(user),
        required=False,
        widget=forms.HiddenInput,
        error_messages={"invalid_choice": _("所选分群不存在或无权查看。")},
    )


def apply(customers: Any, segment: Segment) -> Any:
    return customers.filter(
        Exists(
            SegmentMember.objects.filter(segment=segment, customer_id=OuterRef("pk"))
        )
    )
