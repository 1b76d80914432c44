"""Server response time of every dashboard page, as JSON.

    .venv/bin/python bench/pages.py                            # 10,000,000 demo calls over 30 days
    .venv/bin/python bench/pages.py --calls 1000000 --days 3   # the same density, a tenth of the data

Builds (or reuses) the project `bench-pages` with about --calls demo calls over the last
--days days, rolls them up as the job would, then requests each page --runs times through
Django's full stack (middleware, session login, selectors, templates) with production
settings (DEBUG off, hashed static files) and reports the first and the median time. Uses
DATABASE_URL, or the embedded PostgreSQL of `make run` when it is unset. Targets: every page
under 300 ms, the trace list under 150 ms.
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.metrics import _count, _demo_data, _median_ms, _options, _project  # noqa: E402

TARGET_MS = 300
LIST_TARGET_MS = 150


def _django(static_root: str) -> None:
    # Production settings, as a deployment runs them; plain HTTP on loopback.
    for name, value in {"DJANGO_SETTINGS_MODULE": "observatory.settings", "DEBUG": "0",
                        "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "localhost",
                        "SECURE_SSL_REDIRECT": "0", "LOG_LEVEL": "WARNING", "STATIC_ROOT": static_root}.items():
        os.environ.setdefault(name, value)
    from observatory.devstack.__main__ import DEVDATA
    from observatory.devstack.embedded_postgres import ensure_database_url

    ensure_database_url(DEVDATA)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)


def _pages(slug: str, trace_id: str, user_id: str) -> dict[str, str]:
    base = f"/p/{slug}/"
    return {
        "overview": base,
        "overview_7d": f"{base}?range=7d",
        "overview_30d": f"{base}?range=30d",
        "traces": f"{base}traces/",
        "traces_model_filter": f"{base}traces/?model=claude-haiku-4-5",
        "traces_errors": f"{base}traces/?status=error&range=7d",
        "traces_one_user_30d": f"{base}traces/?user_id={user_id}&range=30d",
        "traces_roots": f"{base}traces/?show=roots",
        "traces_name_search_no_match": f"{base}traces/?q=no-such-name",
        # The worst case: a text search that matches nothing reads every call of the window.
        "traces_name_search_no_match_30d": f"{base}traces/?q=no-such-name&range=30d",
        "trace": f"{base}trace/{trace_id}",
        "latency": f"{base}latency/",
        "latency_7d_by_feature": f"{base}latency/?range=7d&by=feature",
        "latency_30d": f"{base}latency/?range=30d",
        "cost": f"{base}cost/",
        "cost_by_user": f"{base}cost/?by=user_id",
        "cost_30d": f"{base}cost/?range=30d",
        "quality": f"{base}quality/",
        "quality_7d": f"{base}quality/?range=7d",
        "quality_30d": f"{base}quality/?range=30d",
        "finance": f"{base}finance/",
        "finance_csv": f"{base}finance/?export=daily-by-model",
        "reliability": f"{base}reliability/",
        "reliability_30d": f"{base}reliability/?range=30d",
        "settings": f"{base}settings/",
        "budgets": f"{base}budgets/",
        "alerts": f"{base}alerts/",
    }


def _budgets_and_rules(project, newest) -> None:
    """What a team watching this project would have: budgets on the whole project, a model and
    a feature (each one's burn is read per request), and a few rules. Made once; a rerun keeps them."""
    from decimal import Decimal

    from observatory.alerts.models import AlertRule
    from observatory.alerts.services import rule_create
    from observatory.budgets.models import Budget
    from observatory.budgets.services import budget_create

    if Budget.objects.filter(project=project).exists() or newest is None:
        return
    budget_create(project=project, name="Monthly", amount=Decimal(5000))
    budget_create(project=project, name="Daily", period="day", amount=Decimal(200), hard_cap=True)
    budget_create(project=project, name=f"Model {newest.model}", scope="model", scope_value=newest.model,
                  amount=Decimal(1000))
    if newest.feature:
        budget_create(project=project, name=f"Feature {newest.feature}", scope="feature",
                      scope_value=newest.feature, period="week", amount=Decimal(500))
    if not AlertRule.objects.filter(project=project).exists():
        rule_create(project=project, name="Slow answers", kind="latency", percentile="p99", threshold=Decimal(5000))
        rule_create(project=project, name="Errors", kind="error_rate", threshold=Decimal(5))
        rule_create(project=project, name="Spend spike", kind="spend", threshold=Decimal(20), window_minutes=60)


def main(argv: list[str]) -> int:
    options = _options(argv, description=__doc__.splitlines()[0], project="bench-pages")
    _django(tempfile.mkdtemp(prefix="bench-static-"))

    from django.db import connection
    from django.test import Client

    from observatory.calls.models import Call
    from observatory.metrics.services import rollups_compute
    from observatory.tenancy.roles import Role
    from observatory.tenancy.services import membership_set, user_get_or_create

    project, _ = _project(options.project)
    generated_seconds = _demo_data(project, options)
    started = time.monotonic()
    rollups_compute(project_ids=[project.pk])  # what the job would have done as the calls arrived
    rollup_seconds = round(time.monotonic() - started, 1)
    # What autovacuum does within minutes of a load in a running deployment: statistics (right
    # after a bulk load without them the planner misjudges joins: the quality page's score
    # sample took seconds instead of milliseconds) and the visibility map, without which an
    # index-only scan (the error-type breakdown's) still visits every heap page.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) calls_call, calls_trace, calls_score")

    user, _ = user_get_or_create(email="bench-pages@observatory.local", password=None)
    membership_set(organization=project.organization, user=user, role=Role.ADMIN)
    client = Client(SERVER_NAME="localhost")
    client.force_login(user)
    newest = Call.objects.filter(project=project, kind="generation").order_by("-start_time", "-id").first()
    _budgets_and_rules(project, newest)
    # The demo's least active user (its users are Zipf-distributed): the rare value that must
    # not mean reading every call of the window.
    light = "user_01999"

    timings, slow = {}, []
    for name, url in _pages(project.slug, newest.trace_id if newest else "none", light).items():
        status = client.get(url).status_code
        if status != 200:
            raise SystemExit(f"{name}: {url} answered {status}")
        timings[name] = _median_ms(lambda url=url: client.get(url), options.runs)
        target = LIST_TARGET_MS if name.startswith("traces") and "search" not in name else TARGET_MS
        timings[name]["target_ms"] = target
        if timings[name]["median_ms"] > target:
            slow.append(name)

    print(json.dumps({
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "data": {"calls": _count(project, model_calls=False), "model_calls": _count(project, model_calls=True),
                 "days": options.days, "generated_seconds": generated_seconds, "rollup_seconds": rollup_seconds},
        "pages": timings,
        "over_target": slow,
    }, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
