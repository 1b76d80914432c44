"""How many processes this container may run, from the CPUs it is really given."""

from __future__ import annotations

import math
import os
from pathlib import Path

# One web container must not open more PostgreSQL connections than a default server allows
# (max_connections=100) leaves for the workers: every blocking thread may hold one, so the
# default processes x threads stay within this budget.
WEB_CONNECTION_BUDGET = 64
MAX_DEFAULT_WEB_WORKERS = 8
# More threads than this per process buy nothing measurable.
MAX_DEFAULT_WEB_THREADS = 16


def available_cpus(*, cgroup_cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """CPUs this process may use: its affinity, capped by a cgroup v2 quota (`docker run
    --cpus`), which os.cpu_count() ignores and would oversize every pool in a container."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        quota, period = cgroup_cpu_max.read_text().split()[:2]
    except (OSError, ValueError):
        return max(1, cpus)
    if quota != "max" and int(period) > 0:
        cpus = min(cpus, math.ceil(int(quota) / int(period)))
    return max(1, cpus)


def default_web_workers(cpus: int) -> int:
    """One granian worker per CPU, at least two so that one crashing never leaves the container
    without a server. Waiting on PostgreSQL is the blocking threads' job (WEB_THREADS), and fewer
    processes with more threads group more concurrent ingest requests into each insert."""
    return max(2, min(cpus, MAX_DEFAULT_WEB_WORKERS))


def default_web_threads(workers: int) -> int:
    """Blocking threads per web process: as many as the connection budget allows, up to 16.
    Concurrent single-event ingest requests of one process share one insert (group commit),
    so more threads make larger groups: on 2 cores, 16 threads per process took 12% more
    single events per second than 8 in paired runs (bench/README.md)."""
    return max(1, min(MAX_DEFAULT_WEB_THREADS, WEB_CONNECTION_BUDGET // workers))
