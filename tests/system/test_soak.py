"""A short run of bench/soak.py: concurrent valid, repeated and invalid events through granian
while beat and the worker roll up and evaluate; what is stored must be exactly what was
acknowledged, and the rollups must equal the raw calls. Speed and memory are the benchmark's
to report, not this test's to assert."""

from __future__ import annotations

import pytest

from bench.soak import SOAK_ENV, run_soak
from observatory.calls.partitions import call_store_maintain
from tests.system.topology import Topology

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def soak_topology(broker_url, tmp_path, django_db_blocker):
    from django.db import connection

    running = Topology(workdir=tmp_path, database=dict(connection.settings_dict), broker_url=broker_url,
                       extra_env=SOAK_ENV)
    try:
        yield running.start()
    finally:
        running.close()
        with django_db_blocker.unblock():
            call_store_maintain()


def test_a_short_soak_stores_exactly_what_was_acknowledged_and_rolls_it_up(soak_topology):
    report = run_soak(soak_topology, duration=20, rate=20, concurrency=4, sample_every=1)
    assert report["mismatches"] == []
    assert report["checks"] == dict.fromkeys(report["checks"], True), report
    sent, answered = report["events_sent"], report["events_answered"]
    assert sent["new"] > 0 and sent["repeat"] > 0 and sent["invalid"] > 0  # the mix really was mixed
    assert answered["accepted"] == report["stored_calls"] == sent["new"]
    assert set(report["statuses"]) <= {"200", "207", "400"}
    assert all(report["processes_alive"].values())
    assert report["web_server"]["server"] == "granian"
    assert {label.split(":")[0] for label in report["rss"]} == {"web", "worker", "beat"}
