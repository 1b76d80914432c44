"""Ingest through a real granian while PostgreSQL goes away and comes back.

Clients must get 503 with Retry-After during the outage (never a false 2xx), and what they
retry afterwards must be stored exactly once, together with what was stored before.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from observatory.calls.models import Call
from observatory.tenancy.services import bootstrap
from tests.system.db_proxy import DatabaseProxy
from tests.system.topology import wait_until

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def web_behind_proxy(topology):
    """A second web instance whose database connections all go through a proxy we can cut."""
    from django.db import connection

    proxy = DatabaseProxy(connection.settings_dict).start()
    try:
        with topology.extra_web(
            "web-proxied",
            DATABASE_URL=proxy.url(connection.settings_dict, application_name=topology.application_name + "-proxied"),
            WEB_WORKERS="2",
        ) as (_, base_url):
            yield base_url, proxy
    finally:
        proxy.stop()


def batch(prefix: str, size: int) -> bytes:
    start = datetime.now(UTC) - timedelta(minutes=1)
    return json.dumps({"events": [
        {"id": f"{prefix}-{index}", "start_time": (start + timedelta(milliseconds=index)).isoformat(),
         "latency_ms": 300, "model": "gpt-4o-mini", "provider": "openai", "input_tokens": 50, "output_tokens": 5}
        for index in range(size)
    ]}).encode()


def test_database_outage_answers_503_and_retries_are_stored_once(topology, web_behind_proxy):
    base_url, proxy = web_behind_proxy
    slug = "faults-" + uuid.uuid4().hex[:8]
    secret = bootstrap(email=f"{slug}@example.com", password="outage-test-password", project_slug=slug).issued.secret
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}

    def send(body: bytes):
        return topology.request("POST", "/api/v1/events", body=body, headers=headers, base_url=base_url)

    before = send(batch("before", 20))
    assert before.status == 200 and before.json()["accepted"] == 20

    during_batch = batch("during", 30)  # a retry sends the very same body
    proxy.cut()
    during = [send(during_batch) for _ in range(3)]
    for response in during:
        assert response.status == 503, (response.status, response.body)
        assert int(response.headers["Retry-After"]) >= 1

    proxy.restore()
    # A client retries until the server answers; each connection-level failure is a 503 too.
    retried = wait_until(lambda: (response := send(during_batch)).status == 200 and response,
                         timeout=60, what="ingest to recover after the outage")
    assert retried.json()["accepted"] + retried.json()["duplicates"] == 30
    again = send(during_batch)  # the client did not see the 200 and retries once more
    assert again.json()["duplicates"] == 30

    stored = Call.objects.filter(project__slug=slug)
    assert stored.filter(span_id__startswith="before-").count() == 20
    assert stored.filter(span_id__startswith="during-").count() == 30
