"""Numbers and times as notifications show them."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from django.conf import settings

CENT = Decimal("0.01")


def usd(value: Decimal) -> str:
    """Dollars with cents; amounts under a dollar keep four significant digits, so a budget
    of a few cents does not read as $0.00."""
    if value != 0 and abs(value) < 1:
        return f"${value:.4g}" if abs(value) >= Decimal("0.0001") else f"${value:.2e}"
    return f"${value.quantize(CENT, rounding=ROUND_HALF_UP):,}"


def percent(share: Decimal | float) -> str:
    """A share (0.8 is 80 %) with one decimal, without a trailing .0."""
    text = f"{Decimal(str(share)) * 100:.1f}"
    return f"{text.removesuffix('.0')}%"


def local_time(moment: datetime, *, time_zone: str) -> str:
    local = moment.astimezone(ZoneInfo(time_zone))
    return f"{local:%a %d %b %Y, %H:%M} {local.tzname()}"


def local_day(moment: datetime, *, time_zone: str) -> str:
    return f"{moment.astimezone(ZoneInfo(time_zone)):%a %d %b}"


def dashboard_link(*, project_slug: str, section: str) -> str:
    """The absolute URL of a project's dashboard page, e.g. /p/<slug>/budgets/."""
    return f"{settings.SITE_URL}/p/{project_slug}/{section}/"
