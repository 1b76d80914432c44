"""Tenant isolation, swept over every URL Django resolves.

Every route must be classified here, so that a new one cannot ship without someone deciding
who may reach it. Each project-scoped route is then requested by another organization (its
admin logged in, and its API key) with the real ids of this project's objects, and must answer
404 without touching them; a revoked key must get 401 on the very next request, everywhere.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from observatory.alerts.models import AlertRule
from observatory.alerts.services import rule_create
from observatory.budgets.models import Budget
from observatory.budgets.services import budget_create
from observatory.calls.models import Call, Score
from observatory.calls.services import calls_write
from observatory.pricing.models import PriceOverride
from observatory.pricing.services import price_override_create
from observatory.tenancy.services import api_key_create, api_key_revoke
from tests.records import record

pytestmark = pytest.mark.django_db

PUBLIC = "public"  # anyone: probes, login, the schema
STAFF = "staff"  # Django admin: operators only
LOGIN = "login"  # any logged-in user, nothing project-specific in the URL
PAGE = "project page"  # /p/<slug>/...: members of the project's organization
API = "project API"  # /api/v1/...: the project's key, or a member naming ?project=
INGEST = "ingest"  # the project's key writes to its own project only

ROUTES = {
    "healthz": PUBLIC,
    "readyz": PUBLIC,
    "metrics": PUBLIC,  # behind METRICS_TOKEN / METRICS_ALLOWED_NETWORKS, not a tenant's data
    "api/schema/": PUBLIC,
    "login/": PUBLIC,
    "logout/": PUBLIC,
    "api/public/health": PUBLIC,
    "": LOGIN,
    "p/<slug:slug>/": PAGE,
    "p/<slug:slug>/traces/": PAGE,
    "p/<slug:slug>/trace/<path:trace_id>": PAGE,
    "p/<slug:slug>/latency/": PAGE,
    "p/<slug:slug>/cost/": PAGE,
    "p/<slug:slug>/quality/": PAGE,
    "p/<slug:slug>/finance/": PAGE,
    "p/<slug:slug>/reliability/": PAGE,
    "p/<slug:slug>/settings/": PAGE,
    "p/<slug:slug>/budgets/": PAGE,
    "p/<slug:slug>/alerts/": PAGE,
    "api/v1/calls": API,
    "api/v1/traces/<str:trace_id>": API,
    "api/v1/metrics": API,
    "api/v1/price-overrides": API,
    "api/v1/price-overrides/<int:pk>": API,
    "api/v1/budgets": API,
    "api/v1/budgets/<int:pk>": API,
    "api/v1/spend-digest": API,
    "api/v1/guard": API,
    "api/v1/alert-rules": API,
    "api/v1/alert-rules/<int:pk>": API,
    "api/v1/alert-rules/<int:pk>/changes": API,
    "api/v1/alerts": API,
    "api/v1/readiness": API,
    "api/v1/readiness/settings": API,
    "api/v1/loops": API,
    "api/public/projects": API,
    "api/v1/events": INGEST,
    "v1/traces": INGEST,
    "api/public/otel/v1/traces": INGEST,
    "api/public/ingestion": INGEST,
    "api/public/scores": INGEST,
}
# Routes that read or write objects other than the project itself, and which object's id fills them.
OBJECT_PARAMETERS = {
    "api/v1/price-overrides/<int:pk>": "price_override",
    "api/v1/budgets/<int:pk>": "budget",
    "api/v1/alert-rules/<int:pk>": "rule",
    "api/v1/alert-rules/<int:pk>/changes": "rule",
}
# The only project API route a key cannot use (the digest is sent to people) and the only one a
# login cannot (the guard answers applications).
KEY_ONLY = {"api/v1/guard", "api/public/projects"}
LOGIN_ONLY = {"api/v1/spend-digest"}
MARKER = "acme-private-7f3c"


class _Missing:
    pk = 2**31 - 1


NO_OBJECTS = {"trace_id": "no-such-trace", "budget": _Missing, "rule": _Missing, "price_override": _Missing}


def every_route(patterns=None, prefix: str = "") -> list[str]:
    routes = []
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            routes += every_route(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            assert isinstance(pattern, URLPattern)
            routes.append(prefix + str(pattern.pattern))
    return routes


def classify(route: str) -> str | None:
    if route.startswith("admin/"):
        return STAFF
    return ROUTES.get(route)


def test_every_url_is_classified():
    routes = every_route()
    unclassified = [route for route in routes if classify(route) is None]
    assert unclassified == [], f"classify these routes in {__name__}.ROUTES"
    assert set(ROUTES) <= set(routes), f"routes classified but gone: {set(ROUTES) - set(routes)}"


@pytest.fixture
def victim(project, owner, api_key):
    """This project's objects, each named with MARKER so that a leak in any answer shows."""
    trace_id = f"{MARKER}-trace"
    calls_write(project=project, records=[
        record(trace_id=trace_id, span_id=f"{MARKER}-span", name=f"{MARKER} root", user_id=f"{MARKER}-user",
               feature=f"{MARKER}-feature", start_time=datetime.now(UTC) - timedelta(minutes=2)),
    ])
    objects = {
        "trace_id": trace_id,
        "budget": budget_create(project=project, name=f"{MARKER} budget", amount=Decimal("100"),
                                recipients=["owner@acme.test"]),
        "rule": rule_create(project=project, name=f"{MARKER} rule", kind="error_rate", threshold=Decimal(20),
                            window_minutes=10, min_calls=5, recipients=["owner@acme.test"]),
        "price_override": price_override_create(project=project, actor=owner, model_pattern=f"{MARKER}-model",
                                                input_per_mtok=Decimal(1), output_per_mtok=Decimal(2)),
    }
    return project, objects


def foreign_url(route: str, project, objects) -> str:
    """The route filled with this project's real slug and ids."""
    parameter = OBJECT_PARAMETERS.get(route)
    url = "/" + route
    url = url.replace("<slug:slug>", project.slug).replace("<path:trace_id>", objects["trace_id"])
    url = url.replace("<str:trace_id>", objects["trace_id"])
    if parameter:
        url = url.replace("<int:pk>", str(objects[parameter].pk))
    assert "<" not in url, url
    return url


def snapshot(project) -> dict:
    return {
        "budgets": list(Budget.objects.filter(project=project).values()),
        "rules": list(AlertRule.objects.filter(project=project).values()),
        "prices": list(PriceOverride.objects.filter(project=project).values()),
        "calls": list(Call.objects.filter(project=project).values()),
    }


def call(client: Client, method: str, url: str, **headers: str):
    if method == "get":
        return client.get(url, headers=headers)
    return getattr(client, method)(url, data=json.dumps({"name": "taken over"}), content_type="application/json",
                                   headers=headers)


def routes_of(kind: str) -> list[str]:
    return [route for route in every_route() if classify(route) == kind]


@pytest.mark.parametrize("route", routes_of(PAGE))
def test_another_organizations_member_gets_404_on_every_project_page(victim, outsider, route):
    project, objects = victim
    client = Client()
    client.force_login(outsider.user)
    for method in ("get", "post"):
        response = getattr(client, method)(foreign_url(route, project, objects))
        assert response.status_code == 404, (method, response.status_code)
        assert MARKER not in response.content.decode()


@pytest.mark.parametrize("route", sorted(set(routes_of(API)) - KEY_ONLY))
def test_another_organizations_member_gets_404_on_every_project_api(victim, outsider, route):
    project, objects = victim
    before = snapshot(project)
    client = Client()
    client.force_login(outsider.user)
    url = foreign_url(route, project, objects) + f"?project={project.slug}"
    for method in ("get", "post", "put", "patch", "delete"):
        response = call(client, method, url)
        # 405 for a method the route does not have is fine: it reveals nothing and changes nothing.
        assert response.status_code in (404, 405), (method, response.status_code, response.content[:300])
        assert MARKER not in response.content.decode()
    assert snapshot(project) == before


@pytest.mark.parametrize("route", sorted(set(routes_of(API)) - LOGIN_ONLY))
def test_another_organizations_api_key_never_reaches_this_projects_objects(victim, outsider, route):
    project, objects = victim
    before = snapshot(project)
    headers = {"Authorization": f"Bearer {outsider.secret}"}
    url = foreign_url(route, project, objects) + f"?project={project.slug}"
    for method in ("get", "post", "put", "patch", "delete"):
        response = call(Client(), method, url, **headers)
        body = response.content.decode()
        assert MARKER not in body, (method, body[:300])
        if route in OBJECT_PARAMETERS or "trace_id" in route:
            # Reads are 404. A write a key may never make is refused whichever object it names:
            # the same answer as for an id that does not exist, so nothing is learnt.
            nowhere = call(Client(), method, foreign_url(route, project, NO_OBJECTS) + f"?project={project.slug}",
                           **headers)
            assert response.status_code == nowhere.status_code, (method, response.status_code, nowhere.status_code)
            assert response.status_code in ((404,) if method == "get" else (403, 404, 405)), (method, body[:300])
        else:  # a key reads and writes its own project, whatever ?project= says
            assert response.status_code < 500, (method, response.status_code, body[:300])
    assert snapshot(project) == before


def langfuse_batch(trace_id: str, span_id: str) -> dict:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return {"batch": [
        {"id": "evt-1", "type": "generation-update", "timestamp": now,
         "body": {"id": span_id, "traceId": trace_id, "model": "taken-over", "output": "overwritten"}},
        {"id": "evt-2", "type": "trace-create", "timestamp": now,
         "body": {"id": trace_id, "name": "renamed by a stranger", "userId": "stranger"}},
        {"id": "evt-3", "type": "score-create", "timestamp": now,
         "body": {"id": "stranger-score", "traceId": trace_id, "name": "quality", "value": 0}},
    ]}


def test_ingest_with_another_organizations_key_never_touches_this_projects_calls(victim, outsider):
    project, objects = victim
    before = snapshot(project)
    headers = {"Authorization": f"Bearer {outsider.secret}"}
    span_id = f"{MARKER}-span"
    batch = langfuse_batch(objects["trace_id"], span_id)
    response = Client().post("/api/public/ingestion", batch, content_type="application/json", headers=headers)
    assert response.status_code == 207, response.content
    score = Client().post("/api/public/scores", {"traceId": objects["trace_id"], "name": "q", "value": 1},
                          content_type="application/json", headers=headers)
    assert score.status_code < 500
    native = Client().post("/api/v1/events", {"id": span_id, "trace_id": objects["trace_id"],
                                              "start_time": Call.objects.get(span_id=span_id).start_time.isoformat(),
                                              "model": "taken-over"},
                           content_type="application/json", headers=headers)
    assert native.status_code == 200 and native.json()["accepted"] == 1  # a new call in the stranger's project
    assert snapshot(project) == before
    assert not Score.objects.filter(project=project).exists()
    assert Call.objects.filter(project=outsider.project, span_id=span_id).count() == 1


REVOKED_REQUESTS = [
    ("get", "/api/v1/calls", None),
    ("get", "/api/v1/metrics?metrics=count&interval=none", None),
    ("get", "/api/v1/budgets", None),
    ("get", "/api/v1/guard", None),
    ("get", "/api/public/projects", None),
    ("post", "/api/v1/events", {"id": "after-revoke", "start_time": "NOW", "model": "gpt-4o-mini"}),
    ("post", "/v1/traces", {"resourceSpans": []}),
    ("post", "/api/public/otel/v1/traces", {"resourceSpans": []}),
    ("post", "/api/public/ingestion", {"batch": []}),
    ("post", "/api/public/scores", {"traceId": "t", "name": "q", "value": 1}),
]


@pytest.mark.parametrize("scheme", ["bearer", "basic"])
def test_a_revoked_key_gets_401_on_the_very_next_request_everywhere(project, scheme):
    issued = api_key_create(project=project, name="to revoke")
    if scheme == "bearer":
        authorization = f"Bearer {issued.secret}"
    else:
        authorization = "Basic " + base64.b64encode(f"{issued.key.public_id}:{issued.secret}".encode()).decode()

    def send(method: str, path: str, body):
        if body and body.get("start_time") == "NOW":
            body = {**body, "start_time": datetime.now(UTC).isoformat()}
        if body is None:
            return Client().get(path, headers={"Authorization": authorization})
        return Client().post(path, data=json.dumps(body), content_type="application/json",
                             headers={"Authorization": authorization})

    for method, path, body in REVOKED_REQUESTS:  # each one works first, so the 401 below means the revocation
        assert send(method, path, body).status_code < 300, (path, send(method, path, body).content[:300])
    stored = Call.objects.filter(project=project).count()
    api_key_revoke(key=issued.key)
    for method, path, body in REVOKED_REQUESTS:
        response = send(method, path, body)
        assert response.status_code == 401, (path, response.status_code, response.content[:300])
    assert Call.objects.filter(project=project).count() == stored
