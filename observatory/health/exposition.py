"""Who may read metrics, and the text Prometheus reads: the web's /metrics and the Celery
worker's own endpoint share both."""

from __future__ import annotations

import hmac
import ipaddress
import os
from pathlib import Path

from django.conf import settings
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from observatory import telemetry  # noqa: F401 - registers the metrics in single-process mode


def metrics_access(*, authorization: str | None, remote_addr: str | None) -> int:
    """200 when the caller presents METRICS_TOKEN or comes from METRICS_ALLOWED_NETWORKS,
    403 when it does neither, 404 when neither is configured (metrics are off)."""
    token: str | None = settings.METRICS_TOKEN
    networks = settings.METRICS_ALLOWED_NETWORKS
    if not token and not networks:
        return 404
    if token and authorization:
        scheme, _, presented = authorization.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), token.encode()):
            return 200
    if networks and remote_addr:
        try:
            address = ipaddress.ip_address(remote_addr)
        except ValueError:
            return 403
        address = getattr(address, "ipv4_mapped", None) or address
        if any(address in network for network in networks):
            return 200
    return 403


def metrics_text(*, scrape_time: bool) -> bytes:
    """Every process's counters (summed over granian workers or Celery pool processes when
    PROMETHEUS_MULTIPROC_DIR is set), plus, for the web, the values read at scrape time."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        output = generate_latest(registry)
    else:
        output = generate_latest(REGISTRY)
    if scrape_time:
        from observatory.health.scrape import ScrapeCollector

        shared = CollectorRegistry()
        shared.register(ScrapeCollector())
        output += generate_latest(shared)
    return output


def multiprocess_dir_reset() -> None:
    """Run by the web launcher before it becomes granian, and by the Celery worker's main process
    before it forks: counts left in PROMETHEUS_MULTIPROC_DIR by a previous run would otherwise be
    added to this one's.
    Only prometheus-client's own files are removed, whatever directory it points at."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return
    Path(directory).mkdir(parents=True, exist_ok=True)
    for stale in Path(directory).glob("*.db"):
        stale.unlink(missing_ok=True)
