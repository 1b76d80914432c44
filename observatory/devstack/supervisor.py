"""Run a few long-lived processes together and stop them all together.

Each child runs in its own session so that the terminal's Ctrl-C reaches only the
supervisor, which then stops the children in order (SIGTERM, then SIGKILL after a grace
period). If one child dies, the others are stopped too: a half-running stack is worse than
a stopped one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

GRACE_SECONDS = 10


@dataclass
class Child:
    name: str
    argv: Sequence[str]
    process: subprocess.Popen | None = None


def _relay(name: str, stream, width: int) -> None:
    for line in iter(stream.readline, b""):
        sys.stdout.write(f"{name:<{width}} | {line.decode('utf-8', 'replace')}")
        sys.stdout.flush()


def supervise(children: Sequence[Child], *, env: Mapping[str, str], cwd: str, announce: str = "") -> int:
    """Start every child, relay their output with a name prefix, and wait. Returns the exit
    status: 0 after Ctrl-C or SIGTERM, otherwise the status of the child that died first.
    `announce` is printed once Ctrl-C is handled, so whoever reads it may press it at once."""
    stopping = threading.Event()

    def request_stop(signum, frame) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    if announce:
        print(announce, flush=True)
    width = max(len(child.name) for child in children)
    status = 0
    try:
        for child in children:
            child.process = subprocess.Popen(
                list(child.argv),
                env=dict(env),
                cwd=cwd,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            threading.Thread(target=_relay, args=(child.name, child.process.stdout, width), daemon=True).start()
        while not stopping.is_set():
            for child in children:
                code = child.process.poll()
                if code is not None:
                    print(f"{child.name} exited with status {code}; stopping the others.", flush=True)
                    status = code or 1
                    stopping.set()
                    break
            stopping.wait(0.5)
    finally:
        _stop_all(children)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return status


def _stop_all(children: Sequence[Child]) -> None:
    running = [child for child in children if child.process is not None and child.process.poll() is None]
    for child in running:
        _signal_group(child.process, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_SECONDS
    for child in running:
        remaining = max(0.1, deadline - time.monotonic())
        try:
            child.process.wait(remaining)
        except subprocess.TimeoutExpired:
            print(f"{child.name} did not stop within {GRACE_SECONDS}s; killing it.", flush=True)
            _signal_group(child.process, signal.SIGKILL)
            child.process.wait()


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass
