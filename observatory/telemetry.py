"""Every Prometheus metric Observatory records, in one place, for any module to import.

    from observatory import telemetry
    telemetry.INGEST_EVENTS_ACCEPTED.labels(endpoint="events").inc(len(accepted))
    telemetry.INGEST_EVENTS_REJECTED.labels(endpoint="events", reason="invalid_field").inc()
    with telemetry.INGEST_REQUEST_SECONDS.labels(endpoint="events").time(): ...
    telemetry.ALERT_SENDS.labels(channel="email").inc()
    telemetry.ALERT_SEND_FAILURES.labels(channel="email").inc()

Rules that keep the numbers right under granian's workers and Celery's prefork pool, where
every process counts on its own (prometheus-client's multiprocess mode, PROMETHEUS_MULTIPROC_DIR):
- only Counters and Histograms here: a dead process's counts rightly stay in the sum, so
  nothing has to be told when a worker exits. A Gauge would need a multiprocess mode per
  metric, and a live one (livesum, liveall) a call to mark_process_dead on every worker exit,
  which granian has no hook for;
- label values come from small fixed sets (an endpoint, a reason code, a channel), never
  from ids, model names or user input, or the number of series grows without bound.

Values that are facts about the database or the broker (rollup lag, queue depth) are not
counted here: they are read when Prometheus scrapes (observatory.health.scrape).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

INGEST_EVENTS_ACCEPTED = Counter(
    "observatory_ingest_events_accepted",
    "Events stored durably and acknowledged (a retried duplicate counts: it was acknowledged).",
    ["endpoint"],
)
INGEST_EVENTS_REJECTED = Counter(
    "observatory_ingest_events_rejected",
    "Events refused, by reason code (invalid_field, too_old, payload_too_large, unauthorized ...).",
    ["endpoint", "reason"],
)
INGEST_REQUEST_SECONDS = Histogram(
    "observatory_ingest_request_duration_seconds",
    "Time to answer an ingest request, from the first byte read to the acknowledgement.",
    ["endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
ALERT_SENDS = Counter(
    "observatory_alert_sends",
    "Alert notifications handed to their channel (an email accepted by the SMTP server).",
    ["channel"],
)
ALERT_SEND_FAILURES = Counter(
    "observatory_alert_send_failures",
    "Alert notifications that could not be sent (they are retried; see the alert's state).",
    ["channel"],
)
HTTP_REQUESTS = Counter(
    "observatory_http_requests",
    "Requests answered, by URL name (unmatched for anything no route matched), method and status.",
    ["view", "method", "status"],
)
CELERY_TASKS = Counter(
    "observatory_celery_tasks",
    "Celery tasks finished by this worker, by task name and outcome (success, failure, retry).",
    ["task", "outcome"],
)
