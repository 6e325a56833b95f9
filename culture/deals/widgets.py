"""A select that renders only its chosen option; the others come from a search (htmx),
so a choice among a million customers never renders a million options."""

from __future__ import annotations

from typing import Any

from django import forms

from crm.core import bounds


class SearchSelect(forms.Select):
    # Set by SearchChoiceField: where the chosen option's label is read (one query).
    queryset: Any = None

    def optgroups(self, name: str, value: list[Any], attrs: dict | None = None) -> list:
        ids = [bounds.as_id(v) for v in value if v not in ("", None)]
        ids = [i for i in ids if i is not None][:1]
        rows = (
            list(self.queryset.filter(pk__in=ids))
            if ids and self.queryset is not None
            else []
        )
        groups = [(None, [self.create_option(name, "", "—", not rows, 0)], 0)]
        for index, row in enumerate(rows, start=1):
            groups.append(
                (None, [self.create_option(name, row.pk, str(row), True, index)], index)
            )
        return groups


class SearchChoiceField(forms.ModelChoiceField):
    widget = SearchSelect

    def _set_queryset(self, queryset: Any) -> None:
        super()._set_queryset(queryset)
        self.widget.queryset = self._queryset

    queryset = property(forms.ModelChoiceField._get_queryset, _set_queryset)
