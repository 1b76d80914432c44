from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse

from dashboards.filters import filter_choices
from dashboards.forms import SHOW_CHOICES, TraceFilterForm
from dashboards.pages import Page, project_page
from dashboards.selectors.traces import trace_list_get, trace_view_get
from dashboards.tables import Column, Table
from observatory.calls.selectors import InvalidCursor, Position
from observatory.tenancy.roles import Capability

LIST_COLUMNS = [
    Column("start_time", "Started", "datetime"), Column("name", "Name"), Column("kind", "Kind"),
    Column("model", "Model"), Column("status", "Status", "status"), Column("finish_reason", "Finish"),
    Column("user_id", "User"), Column("session_id", "Session"), Column("feature", "Feature"),
    Column("input_tokens", "In tokens", "int"), Column("output_tokens", "Out tokens", "int"),
    Column("cost", "Cost", "money"), Column("latency_ms", "Latency", "ms"),
    Column("time_to_first_token_ms", "TTFT", "ms"),
]
# Listing model calls only, every row would say "generation" or "embedding".
MODEL_CALL_COLUMNS = [column for column in LIST_COLUMNS if column.key != "kind"]
SELECTS = ("model", "provider", "feature", "environment", "finish_reason")


def trace_url(page: Page, trace_id: str, anchor: str = "") -> str:
    return reverse("pages:trace", kwargs={"slug": page.project.slug, "trace_id": trace_id}) + anchor


def _rows(page: Page, listing) -> list[dict]:
    rows = []
    for call in listing.calls:
        trace = listing.traces.get(call.trace_id)
        row = {column.key: getattr(call, column.key, None) for column in LIST_COLUMNS}
        row.update(
            name=call.name or (trace.name if trace else None) or call.model or call.kind,
            name_url=trace_url(page, call.trace_id, f"#span-{call.id}"),
            user_id_url=page.url("traces", user_id=call.user_id) if call.user_id else None,
            session_id_url=page.url("traces", session_id=call.session_id) if call.session_id else None,
            name_badge="loop" if trace is not None and trace.is_loop else None,
        )
        rows.append(row)
    return rows


@project_page("traces")
def traces(request: HttpRequest, page: Page) -> HttpResponse:
    form = TraceFilterForm(request.GET)
    form.is_valid()  # invalid fields are reported next to the form and left out of the filters
    after = None
    if request.GET.get("cursor"):
        try:
            after = Position.decode(request.GET["cursor"])
        except InvalidCursor:
            messages.error(request, "That page link is broken; showing the newest calls.")
    filters = form.call_filters(start=page.range.start, end=page.range.end)
    listing = trace_list_get(project=page.project, filters=filters, after=after)
    show = form.cleaned_data.get("show") or "model"
    columns = MODEL_CALL_COLUMNS if show == "model" and not form.cleaned_data.get("kind") else LIST_COLUMNS
    table = Table(name="calls", title=dict(SHOW_CHOICES)[show], columns=columns, rows=_rows(page, listing),
                  empty="No calls match these filters in this range.")
    choices = filter_choices(project=page.project, start=page.range.start, end=page.range.end, names=SELECTS)
    return page.render("dashboards/traces.html", {
        "form": form, "choices": choices, "show_choices": SHOW_CHOICES, "first_page": after is None,
        "next_cursor": listing.next_position.encode() if listing.next_position else None,
        "searched_back_to": listing.searched_back_to,
    }, tables=[table])


@project_page("traces")
def trace(request: HttpRequest, page: Page, trace_id: str) -> HttpResponse:
    view = trace_view_get(project=page.project, trace_id=trace_id, with_content=page.can(Capability.VIEW_CONTENT))
    if view is None:
        raise Http404("No such trace in this project.")
    links = {}
    if view.trace.user_id:
        links["user"] = page.url("traces", keep_range=False, range="30d", user_id=view.trace.user_id)
    if view.trace.session_id:
        links["session"] = page.url("traces", keep_range=False, range="30d", session_id=view.trace.session_id)
    return page.render("dashboards/trace.html", {"view": view, "links": links})
