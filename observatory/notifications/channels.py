"""Handing a rendered notification to its channel: an SMTP server or a webhook endpoint.

Each function returns when the other side accepted the message and raises otherwise; the
caller records the outcome (services.delivery_attempt).
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
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


class BlockedAddress(OSError):
    """The webhook's host resolves only to addresses webhooks may not reach."""


def address_allowed(address: str) -> bool:
    """Public addresses, and those in ALERT_WEBHOOK_ALLOWED_NETWORKS."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 scope id is not part of the address
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1
    if any(ip in network for network in settings.ALERT_WEBHOOK_ALLOWED_NETWORKS):
        return True
    return ip.is_global and not ip.is_multicast


def _connect_allowed(address, timeout, source_address=None):
    """socket.create_connection to the first allowed address of the host. The vetted address is
    the one connected to, so a DNS answer that changes in between cannot slip past the check."""
    host, port = address
    candidates = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    allowed = [info[4][:2] for info in candidates if address_allowed(info[4][0])]
    if not allowed:
        found = ", ".join(sorted({info[4][0] for info in candidates}))
        raise BlockedAddress(f"{host} resolves to {found}, which webhooks may not reach "
                             "(allow it with ALERT_WEBHOOK_ALLOWED_NETWORKS)")
    error: OSError | None = None
    for sockaddr in allowed:
        try:
            return socket.create_connection(sockaddr, timeout, source_address)
        except OSError as failure:
            error = failure
    raise error


class _GuardedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = _connect_allowed  # what connect() opens its socket with


class _GuardedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = _connect_allowed  # TLS still verifies the host name


class _GuardedHTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req):
        return self.do_open(_GuardedHTTPConnection, req)


class _GuardedHTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req):
        return self.do_open(_GuardedHTTPSConnection, req, context=self._context)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A webhook that redirects is misconfigured; following it would also let a URL that
    passed validation send the alert somewhere else."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: PLR0913 (urllib's signature)
        return None


_opener = urllib.request.build_opener(_NoRedirects, _GuardedHTTPHandler, _GuardedHTTPSHandler)


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
