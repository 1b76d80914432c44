"""Template filters for numbers, and the pieces of page chrome that need Python."""

from __future__ import annotations

import json

from django import template
from django.urls import reverse
from django.utils.html import format_html_join
from django.utils.http import urlencode

from dashboards import formatting
from observatory.reliability.loops import LOOP_REASON_LABELS
from dashboards.plotly_css import inline_style_ids

register = template.Library()

register.filter("money", formatting.money)
register.filter("ms", formatting.duration_ms)
register.filter("pct", formatting.percent)
register.filter("num", formatting.number)
register.filter("moment", formatting.moment)


@register.filter
def cell(row: dict, column) -> str:
    """A table cell as text (escaped by the template like any other string)."""
    return formatting.FORMATS[column.kind](row.get(column.key))


@register.filter
def get(mapping, key):
    return mapping.get(key) if mapping else None


@register.filter
def link(row: dict, column) -> str | None:
    return row.get(f"{column.key}_url")


@register.filter
def badge(row: dict, column) -> str | None:
    """A warning shown next to a cell (e.g. "loop" by a trace's name); not part of exports."""
    return row.get(f"{column.key}_badge")


@register.simple_tag(takes_context=True)
def query(context, **changes) -> str:
    """This page's query string with `changes` applied (None removes a parameter); keeps the
    range and filters when a link only changes one thing, e.g. the page of a list."""
    params = context["request"].GET.copy()
    for name, value in changes.items():
        params.pop(name, None)
        if value not in (None, ""):
            params[name] = value
    encoded = urlencode(sorted(params.lists()), doseq=True)
    return f"?{encoded}" if encoded else "?"



@register.filter
def field_value(form, name: str):
    return form[name].value() or ""


@register.filter
def field_label(form, name: str) -> str:
    return form.fields[name].label or name.replace("_", " ").capitalize() if name in form.fields else name


@register.filter
def pretty_json(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


@register.filter
def as_messages(value) -> list[dict]:
    """Content as a list of {role, text}: chat messages keep their role, anything else is one
    block of text (JSON when it is not a string). Text only: the template escapes it."""
    if isinstance(value, list) and value and all(isinstance(item, dict) and "role" in item for item in value):
        return [{"role": str(item.get("role")), "text": _text(item.get("content"))} for item in value]
    return [{"role": "", "text": _text(value)}]


def _text(value) -> str:
    return value if isinstance(value, str) else pretty_json(value)


@register.filter
def back_to_list(page) -> str:
    return reverse("pages:traces", kwargs={"slug": page.project.slug})


@register.simple_tag
def plotly_style_guards() -> str:
    """Empty elements whose ids tell plotly.js not to inject the stylesheets of the libraries
    it embeds (see dashboards/plotly_css.py)."""
    return format_html_join("", '<meta id="{}">', ((style_id,) for style_id in inline_style_ids()))


@register.filter
def loop_reasons(reasons) -> str:
    return ", ".join(LOOP_REASON_LABELS.get(reason, reason) for reason in reasons or [])


@register.filter
def safety_nets(call) -> list[str]:
    """What the call's signals say, in words: "cache hit (exact)", "attempt 2", "HTTP 429"..."""
    nets = []
    if call.cache_hit:
        saved = f", saved {formatting.money(call.cache_saved_cost)}" if call.cache_saved_cost is not None else ""
        nets.append(f"cache hit{f' ({call.cache_kind})' if call.cache_kind else ''}{saved}")
    if call.attempt and call.attempt > 1:
        nets.append(f"attempt {call.attempt}" + (f" (retries {call.retry_of})" if call.retry_of else ""))
    if call.fallback_from_model or call.fallback_from_provider:
        origin = (call.fallback_from_provider, call.fallback_from_model)
        nets.append("fallback from " + " / ".join(part for part in origin if part))
    if call.http_status:
        nets.append(f"HTTP {call.http_status}")
    if call.timeout_ms is not None:
        nets.append(f"timeout {formatting.duration_ms(call.timeout_ms)}")
    if call.max_tokens is not None:
        nets.append(f"max_tokens {call.max_tokens:,}")
    if call.streamed is not None:
        nets.append("streamed" if call.streamed else "not streamed")
    if call.content_filter:
        nets.append("content filter: " + call.content_filter.replace("_", " "))
    return nets
