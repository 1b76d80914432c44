"""Handing a rendered notification to its channel: an SMTP server or a webhook endpoint.

Each function returns when the other side accepted the message and raises otherwise; the
caller records the outcome (services.delivery_attempt).
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder

from observatory.notifications.messages import email_message_build


class DeliveryError(Exception):
    """The channel refused or could not be reached; worth trying again later."""


def email_send(*, to: str, subject: str, context: dict[str, Any]) -> None:
    # One recipient per message: one address that bounces does not fail the others, and each
    # has its own row in the history.
    sent = email_message_build(subject=subject, context=context, to=[to]).send(fail_silently=False)
    if sent != 1:
        raise DeliveryError("the email backend did not accept the message")


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A webhook that redirects is misconfigured; following it would also let a URL that
    passed validation send the alert somewhere else."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: PLR0913 (urllib's signature)
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def webhook_send(*, url: str, payload: dict[str, Any]) -> int:
    """POST `payload` as JSON; the HTTP status when it is 2xx, DeliveryError otherwise."""
    body = json.dumps(payload, cls=DjangoJSONEncoder).encode()
    request = urllib.request.Request(
        url, data=body, method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "Observatory alerts"},
    )
    try:
        with _opener.open(request, timeout=settings.ALERT_WEBHOOK_TIMEOUT) as response:
            return response.status
    except urllib.error.HTTPError as error:
        raise DeliveryError(f"HTTP {error.code} from the webhook") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise DeliveryError(f"webhook unreachable: {reason}") from None
