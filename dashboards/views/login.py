"""The login page's answer when failed logins have locked an email out from an address."""

from __future__ import annotations

import math

from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from observatory.accounts.lockout import login_client_address, login_lockout_remaining, login_username


def login_locked_out(request: HttpRequest, response: HttpResponse | None, credentials: dict | None) -> HttpResponse:
    """The login page again, saying why and for how long, as a 429 with Retry-After
    (django-axes calls this in place of the page it would have shown)."""
    remaining = login_lockout_remaining(
        username=login_username(request, credentials), ip_address=login_client_address(request)
    )
    seconds = max(1, math.ceil(remaining.total_seconds()))
    form = AuthenticationForm(request, initial={"username": login_username(request, credentials) or ""})
    page = render(
        request,
        "dashboards/login.html",
        {"form": form, "locked_out_minutes": math.ceil(seconds / 60), "next": request.POST.get("next", "")},
        status=429,
    )
    page["Retry-After"] = str(seconds)
    return page
