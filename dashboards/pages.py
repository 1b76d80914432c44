"""What every project page shares: access, navigation, the time range, filters and exports.

A page view is a function decorated with `project_page(...)`: the decorator requires a login,
resolves the project and the user's role (404 for someone outside its organization, 403 for
a role without the page's capability), activates the project's time zone, reads the range
and filters from the URL, and hands the view a `Page`. Views only call selectors and
`page.render(...)`.

Adding a page is: a NavItem below, a view decorated with `project_page("<name>", ...)`, a URL
named like the NavItem and a template extending dashboards/page.html.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property, wraps
from zoneinfo import ZoneInfo

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from dashboards.filters import dimension_filters, filter_choices
from dashboards.tables import Table, table_csv
from dashboards.timerange import CUSTOM, PRESETS, TimeRange, timerange_parse
from observatory.calls.models import Trace
from observatory.tenancy.models import Project
from observatory.tenancy.roles import Capability
from observatory.tenancy.selectors import ProjectAccess, project_access_get, projects_for_user


@dataclass(frozen=True)
class NavItem:
    name: str  # the page's URL name in the "pages" namespace
    label: str
    capability: Capability


NAV: tuple[NavItem, ...] = (
    NavItem("overview", "Overview", Capability.VIEW_TRACES),
    NavItem("traces", "Traces", Capability.VIEW_TRACES),
    NavItem("latency", "Latency", Capability.VIEW_TRACES),
    NavItem("cost", "Cost", Capability.VIEW_COSTS),
    NavItem("quality", "Quality", Capability.VIEW_TRACES),
    NavItem("finance", "Finance", Capability.VIEW_COSTS),
    NavItem("reliability", "Reliability", Capability.VIEW_TRACES),
    NavItem("budgets", "Budgets", Capability.VIEW_COSTS),
    NavItem("alerts", "Alerts", Capability.VIEW_TRACES),
    NavItem("settings", "Settings", Capability.VIEW_TRACES),
)


# Parameters the range bar itself sets, or that must not survive a change of range.
_RANGE_PARAMETERS = {"range", "start", "end", "export", "cursor"}


class Page:
    def __init__(self, *, request: HttpRequest, access: ProjectAccess, name: str, time_range: TimeRange,
                 filter_names: tuple[str, ...]) -> None:
        self.request = request
        self.access = access
        self.project: Project = access.project
        self.name = name
        self.range = time_range
        self.filter_names = filter_names
        self.filters = dimension_filters(request.GET, names=filter_names)

    def can(self, capability: Capability | str) -> bool:
        return self.access.can(Capability(capability))

    @property
    def nav(self) -> list[dict]:
        return [{"label": item.label, "url": self.url(item.name), "current": item.name == self.name}
                for item in NAV if self.can(item.capability)]

    def url(self, name: str, *, project: Project | None = None, keep_range: bool = True, **params: str) -> str:
        """Another page of this (or another) project, showing the same time range."""
        query = {**(self.range.params() if keep_range else {}), **{k: v for k, v in params.items() if v}}
        path = reverse(f"pages:{name}", kwargs={"slug": (project or self.project).slug})
        return f"{path}?{urlencode(query)}" if query else path

    @cached_property
    def filter_choices(self) -> list[dict]:
        """The filter bar: each of the page's filters with the values seen in the range."""
        choices = filter_choices(project=self.project, start=self.range.start, end=self.range.end,
                                 names=self.filter_names)
        for choice in choices:
            choice["selected"] = self.request.GET.get(choice["name"], "")
        return choices

    @property
    def keep_params(self) -> dict[str, str]:
        """Query parameters the range bar does not set, carried through it (e.g. ?by=feature)."""
        return {name: value for name, value in self.request.GET.items()
                if name not in _RANGE_PARAMETERS and name not in self.filter_names}

    @cached_property
    def has_calls(self) -> bool:
        """Whether the project ever received a call: an empty chart then means "widen the
        range", otherwise "send your first call"."""
        return Trace.objects.filter(project=self.project).exists()

    @property
    def wide_url(self) -> str:
        return self.url(self.name, keep_range=False, range="30d")

    @property
    def site_url(self) -> str:
        return self.request.build_absolute_uri("/").rstrip("/")

    @property
    def switcher(self) -> list[dict]:
        """The user's projects, each linking to this page of that project."""
        return [{"project": project, "url": self.url(self.name, project=project), "current": project == self.project}
                for project in projects_for_user(user=self.request.user)]

    def render(self, template: str, context: dict | None = None, *, tables: Iterable[Table] = (),
               status: int = 200) -> HttpResponse:
        """The page, or with `?export=<name>` one of its `tables` as CSV."""
        tables = list(tables)
        export = self.request.GET.get("export")
        if export:
            return self._export(export, tables)
        return render(self.request, template, {
            "page": self, "project": self.project, "range_presets": PRESETS, "custom_range": CUSTOM,
            "can_export": self.can(Capability.EXPORT), "can_view_content": self.can(Capability.VIEW_CONTENT),
            "tables": {table.name: table for table in tables}, **(context or {}),
        }, status=status)

    def _export(self, name: str, tables: list[Table]) -> HttpResponse:
        if not self.can(Capability.EXPORT):
            raise PermissionDenied(f"Your role ({self.access.role}) cannot export data.")
        table = next((table for table in tables if table.name == name), None)
        if table is None:
            raise Http404("No such table on this page.")
        start, end = self.range.local_start, self.range.local_end
        filename = f"{self.project.slug}-{table.name}-{start:%Y%m%d-%H%M}-{end:%Y%m%d-%H%M}.csv"
        return table_csv(table, filename=filename)


def project_page(name: str, capability: Capability = Capability.VIEW_TRACES, *, default_range: str = "24h",
                 filters: tuple[str, ...] = ()) -> Callable:
    """Make `view(request, page, **kwargs)` a project page; see the module docstring.
    `filters` names the dimension filters the page reads from the URL."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @login_required
        @wraps(view)
        def wrapper(request: HttpRequest, slug: str, **kwargs) -> HttpResponse:
            access = project_access_get(user=request.user, slug=slug, capability=capability)
            tz = ZoneInfo(access.project.time_zone)
            # render() runs inside, so templates show times in the project's zone too.
            with timezone.override(tz):
                time_range = timerange_parse(request.GET, tz=tz, now=timezone.now(), default=default_range)
                page = Page(request=request, access=access, name=name, time_range=time_range,
                            filter_names=filters)
                return view(request, page, **kwargs)

        return wrapper

    return decorator
