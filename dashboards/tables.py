"""Tables every page shows the same way, and exports to CSV the same way.

A page hands its tables to `Page.render`; the template shows each one, and
`?export=<table name>` answers the same table as CSV, so "export any table" needs nothing
per table. CSV cells keep exact values (money as decimal strings, times in ISO 8601).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.http import HttpResponse
from django.utils import timezone


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: str = "text"  # a dashboards.formatting.FORMATS key
    # Rows may carry a URL for this cell under "<key>_url".

    @property
    def numeric(self) -> bool:
        return self.kind not in ("text", "datetime", "date", "status")

    @property
    def css(self) -> str:
        if self.numeric:
            return "num"
        return "nowrap" if self.kind in ("datetime", "date", "status") else ""


@dataclass
class Table:
    name: str  # unique on its page; the value of ?export=
    title: str
    columns: list[Column]
    rows: list[dict[str, Any]] = field(default_factory=list)
    empty: str = "Nothing in this range."
    note: str = ""


# Spreadsheet programs run a cell that starts with one of these as a formula; model names,
# user ids and features come from API clients, so they must never be able to.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return timezone.localtime(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def table_csv(table: Table, *, filename: str) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    writer.writerow([_csv_value(column.label) for column in table.columns])
    for row in table.rows:
        writer.writerow([_csv_value(row.get(column.key)) for column in table.columns])
    return response
