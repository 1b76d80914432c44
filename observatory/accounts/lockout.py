"""Who a login attempt is, for counting failed logins (django-axes calls these)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Max
from django.http import HttpRequest
from django.utils import timezone


def login_username(request: HttpRequest, credentials: dict | None) -> str | None:
    """The email tried, as the account stores it: logins are lower-case, so counting `A@x` and
    `a@x` apart would give a guesser a fresh allowance per spelling."""
    credentials = credentials or {}
    tried = credentials.get("username") or credentials.get("email")
    if tried is None and request is not None:
        tried = request.POST.get("username")
    if not isinstance(tried, str):
        return None
    return tried.strip().lower() or None


def login_client_address(request: HttpRequest) -> str | None:
    """The address the attempt came from. Only behind a trusted proxy (BEHIND_PROXY) is
    X-Forwarded-For believed, and then only its last entry, the one our proxy added; otherwise
    a client could pick a new address per guess."""
    if settings.BEHIND_PROXY:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        last = forwarded.rsplit(",", 1)[-1].strip()
        if last:
            return last
    return request.META.get("REMOTE_ADDR") or None


def login_lockout_remaining(*, username: str | None, ip_address: str | None) -> timedelta:
    """How long the pair stays locked out: the cool-off counted from its last counted failure."""
    from axes.models import AccessAttempt

    last = (
        AccessAttempt.objects.filter(username=username, ip_address=ip_address)
        .aggregate(last=Max("attempt_time"))["last"]
    )
    if last is None:
        return settings.AXES_COOLOFF_TIME
    return max(timedelta(0), last + settings.AXES_COOLOFF_TIME - timezone.now())
