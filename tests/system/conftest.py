"""Fixtures of the multi-process tests: a broker server and the production topology."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from observatory.calls.partitions import call_store_maintain
from tests.system.topology import DEFAULT_REDIS_URL, Topology, broker_problem


@pytest.fixture(scope="module")
def broker_url() -> str:
    url = os.environ.get("CELERY_BROKER_URL") or DEFAULT_REDIS_URL
    if url.startswith("filesystem"):
        pytest.skip("the production topology needs a broker server; CELERY_BROKER_URL is the file-system broker")
    problem = broker_problem(url)
    if problem:
        pytest.skip(
            f"no broker reachable at {url} ({problem}); start Redis or set CELERY_BROKER_URL=redis://host:port/db "
            "to run the production topology test"
        )
    return url


@pytest.fixture(scope="module")
def topology(broker_url, django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[Topology]:
    from django.db import connection

    running = Topology(
        workdir=tmp_path_factory.mktemp("topology"), database=dict(connection.settings_dict), broker_url=broker_url
    )
    try:
        yield running.start()
    finally:
        running.close()
        with django_db_blocker.unblock():
            call_store_maintain()  # partitions a test dropped come back for the rest of the suite


