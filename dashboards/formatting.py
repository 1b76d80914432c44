"""How numbers read on pages: money, durations, rates. CSV exports keep the raw values."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.utils import timezone

MISSING = "—"


def money(value: Decimal | float | None) -> str:
    """Dollars to the cent; amounts under a cent (one LLM call often costs less) to their
    first two significant digits, so they never read as $0.00."""
    if value is None:
        return MISSING
    value = Decimal(value)
    if value == 0 or abs(value) >= Decimal("0.01"):
        return f"${value:,.2f}"
    places = -value.adjusted() + 1
    return f"${value:.{places}f}"


def duration_ms(value: float | None) -> str:
    if value is None:
        return MISSING
    if value < 1000:
        return f"{value:,.0f} ms"
    if value < 60_000:
        return f"{value / 1000:,.2f} s"
    return f"{value / 60_000:,.1f} min"


def percent(value: float | None, places: int = 1) -> str:
    if value is None:
        return MISSING
    return f"{value * 100:,.{places}f}%"


def number(value: int | float | None, places: int = 0) -> str:
    if value is None:
        return MISSING
    return f"{value:,.{places}f}"


def moment(value: datetime | None) -> str:
    """A time in the active (the project's) time zone, to the second."""
    if value is None:
        return MISSING
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S")


FORMATS = {
    "text": lambda value: MISSING if value in (None, "") else str(value),
    "int": number,
    "float": lambda value: number(value, 2),
    "money": money,
    "ms": duration_ms,
    "pct": percent,
    "tps": lambda value: MISSING if value is None else f"{value:,.0f} tok/s",
    "datetime": moment,
    "date": lambda value: MISSING if value is None else value.isoformat(),
    "status": lambda value: MISSING if value is None else str(value),
}
