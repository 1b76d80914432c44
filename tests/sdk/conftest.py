"""The Python client against the real app: pytest-django's live server, real PostgreSQL.

Clients here retry within milliseconds so that outages cost the suite nothing; what
the tests check is what was stored and counted, never how long anything took.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache
from observatory_sdk import Observatory

from observatory.calls.models import Call
from tests.sdk.fake_llm import FakeLLMServer
from tests.sdk.ingest_gate import IngestGate

QUICK_RETRIES = {"backoff_initial": 0.005, "backoff_max": 0.02, "request_timeout": 10}


def a_call(**fields) -> dict:
    """The fields of one ordinary generation, with any of them overridden."""
    return {"model": "gpt-4o-mini", "provider": "openai", "input_tokens": 120, "output_tokens": 30,
            "latency_ms": 640, "start_time": datetime.now(UTC) - timedelta(seconds=5), **fields}


def wait_until(condition: Callable[[], bool], *, what: str, limit: float = 30) -> None:
    """Poll until `condition` holds; the limit only keeps a broken build from hanging."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.01)


def only_call(project) -> Call:
    return Call.objects.get(project=project)


def assert_failure_recorded(project, *, error_type: str, model: str, message: str, http_status: int) -> None:
    """The one call stored is the failed request, with the provider's error and status."""
    call = only_call(project)
    assert (call.status, call.error_type, call.model) == ("error", error_type, model)
    assert message in call.error_message
    assert call.http_status == http_status


@pytest.fixture(autouse=True)
def _fresh_rate_limit_counters():
    cache.clear()


@pytest.fixture
def make_observatory(live_server, api_key) -> Iterator[Callable[..., Observatory]]:
    """Observatory clients pointed at the live server (or `base_url`), shut down afterwards."""
    made: list[Observatory] = []

    def make(**settings) -> Observatory:
        settings = {"base_url": live_server.url, "secret_key": api_key.secret, **QUICK_RETRIES, **settings}
        client = Observatory(**settings)
        made.append(client)
        return client

    yield make
    for client in made:
        client.shutdown(timeout=5)


@pytest.fixture
def observatory(make_observatory) -> Observatory:
    return make_observatory(flush_interval=0.05)


@pytest.fixture
def gate(live_server) -> Iterator[IngestGate]:
    gate = IngestGate(live_server.url)
    yield gate
    gate.close()


@pytest.fixture
def llm_server() -> Iterator[FakeLLMServer]:
    server = FakeLLMServer()
    yield server
    server.close()
