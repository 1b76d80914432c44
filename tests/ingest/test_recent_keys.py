"""A key remembered from an earlier request skips its lookup; the write that stores the
request's calls proves it, and anything that changed since (a revocation, the project's
redaction mode or prices, the key's rate limit) takes effect on the very next request."""

from __future__ import annotations

import pytest
from django.utils import timezone

from ingest.group_commit import GroupCommit
from observatory.calls.models import Call, CallContent
from observatory.calls.services import calls_write
from observatory.pricing.services import price_override_create
from observatory.tenancy import recent_keys
from observatory.tenancy.models import ApiKey, RedactionMode
from observatory.tenancy.services import api_key_revoke
from tests.ingest.conftest import event
from tests.ingest.test_group_commit import START, queued_behind_a_held_write, record

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _nothing_remembered():
    recent_keys._remembered.clear()
    yield
    recent_keys._remembered.clear()


@pytest.fixture
def lookups(monkeypatch):
    counted = []
    original = recent_keys.api_key_authenticate

    def counting(**kwargs):
        counted.append(1)
        return original(**kwargs)

    monkeypatch.setattr(recent_keys, "api_key_authenticate", counting)
    return counted


def test_a_remembered_key_is_not_looked_up_again(ingest, lookups):
    for index in range(3):
        assert ingest.post(event(id=f"r{index}")).status_code == 200
    assert len(lookups) == 1
    assert Call.objects.count() == 3


def test_a_key_revoked_after_it_was_remembered_is_refused_at_once(ingest, api_key, lookups):
    assert ingest.post(event(id="before")).status_code == 200
    api_key_revoke(key=api_key.key)
    response = ingest.post({"events": [event(id=f"after-{index}") for index in range(40)]})  # a large batch too
    assert response.status_code == 401
    assert ingest.post(event(id="after")).status_code == 401
    assert list(Call.objects.values_list("span_id", flat=True)) == ["before"]


def test_a_revoked_remembered_key_over_its_rate_limit_hears_401(ingest, api_key, monkeypatch):
    monkeypatch.setattr("observatory.tenancy.throttling.time.time", lambda: 1_800_000_000.5)  # one window
    ApiKey.objects.filter(pk=api_key.key.pk).update(rate_limit_per_second=1)
    assert ingest.post(event(id="before")).status_code == 200
    api_key_revoke(key=api_key.key)
    assert [ingest.post(event(id=f"after-{index}")).status_code for index in range(3)] == [401, 401, 401]


@pytest.mark.parametrize("body", [{"events": [event(id="bad", input_tokens=-1)]}, None])
def test_a_revoked_remembered_key_hears_401_even_when_its_request_is_bad(ingest, api_key, body):
    assert ingest.post(event(id="before")).status_code == 200
    api_key_revoke(key=api_key.key)
    response = ingest.post(body) if body else ingest.post(raw=b"{not json")
    assert response.status_code == 401


def test_a_change_of_redaction_mode_applies_to_the_next_request(ingest, project):
    project.redaction_mode = RedactionMode.STORE
    project.save()
    assert ingest.post(event(id="kept", input="mail me at jane@example.com")).status_code == 200
    project.redaction_mode = RedactionMode.DROP
    project.save()
    response = ingest.post(event(id="dropped", input="mail me at jane@example.com"))
    assert response.status_code == 200 and response.json()["accepted"] == 1
    contents = {c.call_id: c.input for c in CallContent.objects.all()}
    kept, dropped = Call.objects.get(span_id="kept"), Call.objects.get(span_id="dropped")
    assert contents[kept.id] == "mail me at jane@example.com"
    assert contents.get(dropped.id) is None


def test_a_new_price_override_applies_to_the_next_request(ingest, project):
    assert ingest.post(event(id="catalog")).status_code == 200
    price_override_create(project=project, actor=None, model_pattern="gpt-4o-mini", input_per_mtok=1000,
                          output_per_mtok=1000, effective_from=timezone.now() - timezone.timedelta(days=1))
    assert ingest.post(event(id="override")).status_code == 200
    assert Call.objects.get(span_id="catalog").cost_source == "catalog"
    assert Call.objects.get(span_id="override").cost_source == "override"


def test_a_lowered_rate_limit_applies_to_the_next_request(ingest, api_key):
    assert ingest.post(event(id="first")).status_code == 200
    ApiKey.objects.filter(pk=api_key.key.pk).update(rate_limit_per_second=1)
    statuses = [ingest.post(event(id=f"limited-{index}")).status_code for index in range(4)]
    assert 429 in statuses


def test_a_stale_guard_stores_nothing(project, api_key):
    recent_key = api_key.key
    ApiKey.objects.filter(pk=recent_key.pk).update(rate_limit_per_second=7)  # no longer what was remembered
    guard = recent_keys.write_guard([recent_key], project)
    for size in (1, 40):  # one statement, and staged
        result = calls_write(project=project, guard=guard,
                             records=[record(trace_id=f"g{size}", span_id=f"s{i}", start_time=START) for i in range(size)])
        assert result.stale and not result.accepted
    assert not Call.objects.exists()
    result = calls_write(project=project, guard=recent_keys.write_guard([ApiKey.objects.get(pk=recent_key.pk)], project),
                         records=[record(trace_id="fresh", span_id="s", start_time=START)])
    assert result.accepted == [0] and not result.stale


def test_one_revoked_key_in_a_group_makes_the_whole_group_try_again(project, api_key):
    other = ApiKey.objects.create(project=project, name="other", public_id="pk-obs-other", secret_hash="x" * 64,
                                  secret_hint="sk-obs-…")
    revoked_at_rest = ApiKey.objects.get(pk=other.pk)
    api_key_revoke(key=other)
    followers = [record(trace_id=f"f{i}", span_id="x", start_time=START) for i in range(2)]
    _, results = queued_behind_a_held_write(GroupCommit(), project, followers, keys=[api_key.key, revoked_at_rest])
    assert all(result.stale for result in results)
    assert not Call.objects.filter(trace_id__startswith="f").exists()


def test_a_looked_up_key_in_a_group_refused_for_another_key_stores_again(ingest, monkeypatch):
    """The write refuses a whole group when any remembered key in it fails the guard; a
    request whose own key was just looked up is stored again too."""
    from ingest.native import views
    from ingest.native.services import IngestReport

    real, calls = views.events_ingest, []

    def refused_once(**kwargs):
        calls.append(kwargs.get("unproven_key"))
        return IngestReport(status=409, body={}, stale=True) if len(calls) == 1 else real(**kwargs)

    monkeypatch.setattr(views, "events_ingest", refused_once)
    response = ingest.post(event(id="grouped"))
    assert response.status_code == 200 and response.json()["accepted"] == 1
    assert calls == [None, None]  # looked up, not remembered, both times
    assert Call.objects.filter(span_id="grouped").count() == 1
