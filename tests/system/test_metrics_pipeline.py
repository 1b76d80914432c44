"""Real Celery worker and beat processes against the test database: calls written through the
write path show up in rollups, and in the metrics API, without anyone running the job by hand."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

from observatory.calls.models import ChangedMinute
from observatory.calls.services import calls_write
from tests.metrics_helpers import rollup_table_totals
from tests.records import record

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.system


def test_database_url() -> str:
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="") + (":" + quote(db["PASSWORD"], safe="") if db["PASSWORD"] else "")
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{credentials}@{quote(db['HOST'] or '', safe='')}{port}/{db['NAME']}"


test_database_url.__test__ = False  # a helper, not a test


@pytest.fixture
def celery(live_server, tmp_path):
    """A worker and beat on the test database; the file broker in a temporary folder unless
    CELERY_BROKER_URL is set. Both are always killed, with anything they started."""
    env = dict(os.environ, DATABASE_URL=test_database_url(), OBSERVATORY_DEVDATA=str(tmp_path),
               ROLLUP_INTERVAL_SECONDS="1", PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "celery", "-A", "observatory"]
    processes, logs = [], []
    try:
        for name, arguments in (
            ("worker", ["worker", "--pool", "solo", "--loglevel", "INFO", "--without-heartbeat", "--without-gossip"]),
            ("beat", ["beat", "--loglevel", "INFO", "--schedule", str(tmp_path / "beat-schedule")]),
        ):
            logs.append(log := open(tmp_path / f"{name}.log", "w"))
            processes.append(subprocess.Popen([*command, *arguments], cwd=ROOT, env=env, stdout=log,
                                              stderr=subprocess.STDOUT, start_new_session=True))
        yield tmp_path
    finally:
        for process in processes:
            _stop(process)
        for log in logs:
            log.close()


def _stop(process: subprocess.Popen) -> None:
    for sig, grace in ((signal.SIGTERM, 15), (signal.SIGKILL, 15)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def wait_until(condition, what: str, logs: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            output = "\n".join(f"--- {path.name}\n{path.read_text()[-3000:]}" for path in logs.glob("*.log"))
            raise AssertionError(f"{what} did not happen within {timeout}s\n{output}")
        time.sleep(0.5)


def api_count(live_server, secret: str, start: datetime) -> int:
    url = f"{live_server.url}/api/v1/metrics?metrics=count&interval=none&start={quote(start.isoformat())}"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {secret}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        rows = json.load(response)["rows"]
    return rows[0]["count"] if rows else 0


def rolled_up(project, expected: int):
    def done() -> bool:
        pending = ChangedMinute.objects.filter(project=project).exists()
        return not pending and rollup_table_totals("metrics_rollup_minute", project)[0] == expected
    return done


def test_worker_and_beat_roll_up_new_calls_and_the_api_follows(celery, live_server, project, api_key):
    start = datetime.now(UTC) - timedelta(hours=1)
    calls_write(project=project, records=[record(start_time=datetime.now(UTC) - timedelta(minutes=m))
                                          for m in range(1, 31)])
    wait_until(rolled_up(project, 30), "the first rollup", celery)
    assert rollup_table_totals("metrics_rollup_hour", project, dims=0)[0] == 30
    assert api_count(live_server, api_key.secret, start) == 30

    calls_write(project=project, records=[record(start_time=datetime.now(UTC) - timedelta(seconds=s))
                                          for s in range(1, 13)])
    wait_until(rolled_up(project, 42), "the rollup of new calls", celery)
    assert rollup_table_totals("metrics_rollup_day", project, dims=0)[0] == 42
    assert api_count(live_server, api_key.secret, start) == 42
