"""The segment form and the rule builder's flat encoding.

The builder is a plain HTML form: every node of the rule tree has a path ("0" is the
top group, "0.2" its second child, "0.2.1" …) listed in order in `node`, with
`<path>-type` (group/rule), a group's `<path>-op`, and a rule's `<path>-field`,
`<path>-operator` and value inputs (`-values` ticks, `-text`, `-days`, `-count`,
`-amount`, `-min`, `-max`, `-from`, `-to`, `-event`). `draft_from_post` reads that back
into a draft tree (raw inputs kept for re-rendering); `tree_of(draft)` gives what
rules.validate() checks. Buttons named `action` (add_rule:<path>, add_group:<path>,
remove:<path>) edit the draft; the server re-renders it, so no script is needed.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from culture.segments import rules
from culture.segments.models import Segment

RAW_KEYS = ("text", "days", "count", "amount", "min", "max", "from", "to", "event")
MAX_NODES = 40  # groups and rules in one posted draft


class SegmentForm(forms.Form):
    name = forms.CharField(label=_("名称"), max_length=60)
    description = forms.CharField(label=_("说明"), max_length=300, required=False)
    visibility = forms.ChoiceField(
        label=_("共享范围"), choices=Segment.Visibility.choices
    )

    def __init__(self, *args: Any, can_share: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not can_share:
            self.fields["visibility"].choices = [
                (Segment.Visibility.PRIVATE, Segment.Visibility.PRIVATE.label)
            ]
        for field in self.fields.values():
            css = (
                "form-select"
                if isinstance(field.widget, forms.Select)
                else "form-control"
            )
            field.widget.attrs.setdefault("class", css)


class StaticSearchForm(forms.Form):
    q = forms.CharField(label=_("姓名或电话"), max_length=50)


class FollowUpBulkForm(forms.Form):
    note = forms.CharField(label=_("跟进事项"), max_length=200)
    due_at = forms.DateTimeField(
        label=_("到期时间"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
    )
    assignee = forms.TypedChoiceField(
        label=_("跟进人"), required=False, coerce=int, empty_value=None
    )

    def __init__(self, *args: Any, people: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["assignee"].choices = [("", _("各客户的负责人"))] + [
            (person.pk, str(person)) for person in people
        ]
        for field in self.fields.values():
            css = (
                "form-select"
                if isinstance(field.widget, forms.Select)
                else "form-control"
            )
            field.widget.attrs.setdefault("class", css)


class ReassignBulkForm(forms.Form):
    new_owner = forms.TypedChoiceField(label=_("新负责人"), coerce=int)
    confirm = forms.BooleanField(label=_("我确认转移这些客户及其未完成的跟进"))

    def __init__(self, *args: Any, people: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["new_owner"].choices = [(p.pk, str(p)) for p in people]
        self.fields["new_owner"].widget.attrs["class"] = "form-select"
        self.fields["confirm"].widget.attrs["class"] = "form-check-input"


# --- the builder's draft ---------------------------------------------------------------


def empty_rule() -> dict:
    return {"type": "rule", "field": "tier", "operator": "in", "values": [], "raw": {}}


def empty_draft() -> dict:
    return {"type": "group", "op": "and", "children": [empty_rule()]}


def draft_from_tree(tree: dict) -> dict:
    """A saved definition as the builder shows it."""

    def node(item: dict) -> dict:
        if "op" in item:
            return {
                "type": "group",
                "op": item["op"],
                "children": [node(child) for child in item["rules"]],
            }
        return _rule_draft(item)

    if not tree or not tree.get("rules"):
        return empty_draft()
    return node(tree)


def _rule_draft(rule: dict) -> dict:
    value = rule["value"]
    draft = {
        "type": "rule",
        "field": rule["field"],
        "operator": rule["operator"],
        "values": [],
        "raw": {},
    }
    kind = rules.FIELDS[rule["field"]].kind
    if kind in ("choice", "user", "team"):
        draft["values"] = [str(item) for item in value or []]
    elif kind == "text":
        draft["raw"]["text"] = "，".join(value)
    elif kind == "days":
        if isinstance(value, dict):
            draft["raw"].update(min=value["min"], max=value["max"])
        elif value is not None:
            draft["raw"]["days"] = value
    elif kind == "deals":
        draft["raw"]["count" if rule["operator"] == "count_gte" else "amount"] = value
    elif isinstance(value, dict):
        draft["raw"].update({k: v for k, v in value.items() if v is not None})
    draft["raw"] = {key: str(raw) for key, raw in draft["raw"].items()}
    return draft


def draft_from_post(data: Any) -> dict:
    """The draft tree from the builder's flat fields (at most MAX_NODES nodes)."""
    paths = [p for p in data.getlist("node")[:MAX_NODES] if _is_path(p)]
    nodes: dict[str, dict] = {}
    for path in paths:
        if path in nodes:
            continue
        if data.get(f"{path}-type") == "group":
            op = data.get(f"{path}-op")
            nodes[path] = {
                "type": "group",
                "op": op if op in ("and", "or") else "and",
                "children": [],
            }
        else:
            field = str(data.get(f"{path}-field", ""))[:30]
            if data.get(f"{path}-was") not in (None, field):
                # Another field was picked: its values mean nothing for this one.
                spec = rules.FIELDS.get(field)
                operator = next(iter(spec.operators)) if spec else ""
                nodes[path] = {**empty_rule(), "field": field, "operator": operator}
                continue
            nodes[path] = {
                "type": "rule",
                "field": str(data.get(f"{path}-field", ""))[:30],
                "operator": str(data.get(f"{path}-operator", ""))[:30],
                "values": [str(v)[:30] for v in data.getlist(f"{path}-values")][:60],
                "raw": {
                    key: str(data.get(f"{path}-{key}", ""))[:400]
                    for key in RAW_KEYS
                    if data.get(f"{path}-{key}", "") != ""
                },
            }
    root = nodes.get("0")
    if root is None or root["type"] != "group":
        return empty_draft()
    for path in paths:
        if path == "0" or "." not in path:
            continue
        parent = nodes.get(path.rsplit(".", 1)[0])
        if (
            parent is not None
            and parent["type"] == "group"
            and nodes[path] not in parent["children"]
        ):
            parent["children"].append(nodes[path])
    return root


def _is_path(value: str) -> bool:
    parts = value.split(".")
    return (
        len(parts) <= rules.MAX_DEPTH + 1
        and parts[0] == "0"
        and all(part.isdigit() and len(part) <= 3 for part in parts)
    )


def apply_action(draft: dict, action: str) -> dict:
    """add_rule:<path>, add_group:<path>, remove:<path> on the draft (paths as rendered)."""
    verb, _sep, path = action.partition(":")
    if not _is_path(path):
        return draft
    target, parent, index = _find(draft, path)
    if target is None:
        return draft
    if verb == "add_rule" and target["type"] == "group":
        target["children"].append(empty_rule())
    elif (
        verb == "add_group"
        and target["type"] == "group"
        and path.count(".") < rules.MAX_DEPTH - 1
    ):
        target["children"].append(
            {"type": "group", "op": "or", "children": [empty_rule()]}
        )
    elif verb == "remove" and parent is not None:
        parent["children"].pop(index)
    return draft


def _find(draft: dict, path: str) -> tuple[dict | None, dict | None, int]:
    node, parent, index = draft, None, 0
    for part in path.split(".")[1:]:
        index = int(part)
        if node["type"] != "group" or index >= len(node["children"]):
            return None, None, 0
        parent, node = node, node["children"][index]
    return node, parent, index


def tree_of(draft: dict) -> dict:
    """What rules.validate() checks: each rule's value built from its raw inputs."""

    def node(item: dict) -> dict:
        if item["type"] == "group":
            return {
                "op": item["op"],
                "rules": [node(child) for child in item["children"]],
            }
        return {
            "field": item["field"],
            "operator": item["operator"],
            "value": _value(item),
        }

    return node(draft)


def _value(item: dict) -> Any:
    spec = rules.FIELDS.get(item["field"])
    raw = item["raw"]
    if spec is None:
        return None
    if spec.kind in ("choice", "user", "team"):
        return item["values"]
    if spec.kind == "text":
        text = raw.get("text", "")
        for separator in ("，", "、", " ", ";", "；"):
            text = text.replace(separator, ",")
        return [part for part in text.split(",") if part.strip()]
    if spec.kind == "days":
        if item["operator"] == "between":
            return {"min": raw.get("min"), "max": raw.get("max")}
        return raw.get("days")
    if spec.kind == "deals":
        return raw.get("count" if item["operator"] == "count_gte" else "amount")
    return dict(raw)


def rendered(draft: dict) -> dict:
    """The draft with paths, field specs and choices attached, for the templates."""

    def node(item: dict, path: str) -> dict:
        if item["type"] == "group":
            return {
                **item,
                "path": path,
                "depth": path.count("."),
                "can_nest": path.count(".") < rules.MAX_DEPTH - 1,
                "children": [
                    node(child, f"{path}.{i}")
                    for i, child in enumerate(item["children"])
                ],
            }
        spec = rules.FIELDS.get(item["field"]) or rules.FIELDS["tier"]
        field = item["field"] if item["field"] in rules.FIELDS else "tier"
        operator = (
            item["operator"]
            if item["operator"] in spec.operators
            else next(iter(spec.operators))
        )
        return {
            **item,
            "path": path,
            "field": field,
            "operator": operator,
            "spec": spec,
            "operators": list(spec.operators.items()),
            "choices": [(str(code), label) for code, label in spec.choices()]
            if spec.choices
            else [],
        }

    return node(draft, "0")


def field_options() -> list[tuple[str, Any]]:
    return [(name, spec.label) for name, spec in rules.FIELDS.items()]
