"""Ingest outcomes as Prometheus counters, with one reason vocabulary for every way in."""

from __future__ import annotations

from observatory import telemetry

# A request refused as a whole counts once under its reason: its events were never read.
REASON_BY_STATUS = {
    400: "invalid_request",
    401: "unauthorized",
    404: "not_found",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def events_accepted(endpoint: str, count: int) -> None:
    if count:
        telemetry.INGEST_EVENTS_ACCEPTED.labels(endpoint=endpoint).inc(count)


def events_rejected(endpoint: str, count: int, reason: str = "invalid_event") -> None:
    if count:
        telemetry.INGEST_EVENTS_REJECTED.labels(endpoint=endpoint, reason=reason).inc(count)


def request_refused(endpoint: str, status: int) -> None:
    events_rejected(endpoint, 1, REASON_BY_STATUS.get(status, "invalid_request"))


def request_timer(endpoint: str):
    return telemetry.INGEST_REQUEST_SECONDS.labels(endpoint=endpoint).time()
