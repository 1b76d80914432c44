from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache
from django.test import Client


@pytest.fixture(autouse=True)
def _fresh_rate_limit_counters():
    cache.clear()
    yield
    cache.clear()


def now_iso(offset: timedelta = timedelta()) -> str:
    return (datetime.now(UTC) + offset).isoformat()


def event(**fields) -> dict:
    """A minimal valid native event, with any field overridden."""
    return {"start_time": now_iso(timedelta(seconds=-30)), "latency_ms": 500, "model": "gpt-4o-mini",
            "provider": "openai", "input_tokens": 100, "output_tokens": 20, **fields}


class IngestClient:
    """Posts to /api/v1/events with a project's key, the way an application would."""

    def __init__(self, secret: str) -> None:
        self.client = Client()
        self.secret = secret

    def post(self, payload=None, *, raw: bytes | None = None, content_type: str = "application/json",
             gzip_body: bool = False, headers: dict | None = None, auth: str | None = "default"):
        body = raw if raw is not None else json.dumps(payload).encode()
        extra = dict(headers or {})
        if gzip_body:
            body = gzip.compress(body)
            extra["HTTP_CONTENT_ENCODING"] = "gzip"
        if auth == "default":
            extra["HTTP_AUTHORIZATION"] = f"Bearer {self.secret}"
        elif auth is not None:
            extra["HTTP_AUTHORIZATION"] = auth
        return self.client.generic("POST", "/api/v1/events", body, content_type=content_type, **extra)


@pytest.fixture
def ingest(api_key):
    return IngestClient(api_key.secret)
