"""`make run`'s launcher as a new user meets it: a fresh data folder, no DATABASE_URL, no broker.

It must start an embedded PostgreSQL, migrate, create the demo login, project and key (printed
once), fill the project, serve the web app with a Celery worker and beat on the file broker,
and stop every process it started on Ctrl-C.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.system


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Launcher:
    def __init__(self, devdata: Path, port: int) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "DEBUG",
                                                                  "SECRET_KEY", "SITE_URL")}
        env.update(OBSERVATORY_DEVDATA=str(devdata), DEMO_CALLS="400", DEMO_DAYS="3", PYTHONUNBUFFERED="1")
        self.env = env
        self.port = port
        self.process = subprocess.Popen(
            [sys.executable, "-m", "observatory.devstack", "run", "--port", str(port)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line)

    def wait_for(self, text: str, timeout: float = 180) -> None:
        """Wait until `text` has appeared anywhere in the output (processes print in any order)."""
        if any(text in line for line in self.output):
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            self.output.append(line)
            if text in line:
                return
        raise AssertionError(f"{text!r} never appeared; output:\n{''.join(self.output)}")

    def interrupt(self) -> int:
        family = psutil.Process(self.process.pid).children(recursive=True)
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout=60)
        gone, alive = psutil.wait_procs(family, timeout=15)
        assert not alive, f"left running after Ctrl-C: {[p.pid for p in alive]}"
        return code


def get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status


@pytest.fixture
def devdata(tmp_path):
    yield tmp_path / "devdata"
    # The embedded server stops with its last client; make sure of it even when a test failed.
    for proc in psutil.process_iter(["name", "cmdline"]):
        if proc.info["name"] == "postgres" and str(tmp_path) in " ".join(proc.info["cmdline"] or []):
            proc.kill()


def test_make_run_starts_everything_and_ctrl_c_stops_everything(devdata):
    port = free_port()
    launcher = Launcher(devdata, port)
    launcher.wait_for("Secret key:")
    launcher.wait_for("Wrote ")
    launcher.wait_for("celery@")  # the worker's banner
    launcher.wait_for("ready.")
    launcher.wait_for("beat: Starting")
    deadline = time.monotonic() + 30
    while True:
        try:
            assert get(f"http://127.0.0.1:{port}/healthz") == 200
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)

    # A task sent through the file broker reaches the worker.
    subprocess.run(
        [sys.executable, "-m", "observatory.devstack", "manage", "shell", "-c",
         "from observatory.calls.tasks import partitions_maintain; partitions_maintain.delay()"],
        cwd=ROOT, env=launcher.env, check=True, capture_output=True, timeout=60,
    )
    launcher.wait_for("partitions_maintain", timeout=60)
    launcher.wait_for("succeeded", timeout=60)
    assert (devdata / "postgres" / "PG_VERSION").exists()

    assert launcher.interrupt() == 0

    # Second run: nothing printed twice, nothing generated twice.
    again = Launcher(devdata, port)
    again.wait_for("password printed on first run")
    again.wait_for("Observatory is starting")
    assert again.interrupt() == 0
    assert not any("Secret key:" in line or "Filling the demo project" in line for line in again.output)
