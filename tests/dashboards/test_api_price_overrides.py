from __future__ import annotations

from decimal import Decimal

import pytest

from observatory.audit.models import AuditEvent
from observatory.calls.models import Call
from observatory.pricing.models import PriceOverride
from tests.dashboards.test_api_calls import bearer, logged_in
from tests.ingest.conftest import IngestClient, event

OVERRIDE = {"model_pattern": "gpt-4o-mini", "input_per_mtok": "0.10", "output_per_mtok": "0.40",
            "effective_from": "2020-01-01T00:00:00Z"}


def test_engineer_creates_an_override_that_prices_new_calls(project, teammate, api_key):
    client = logged_in(teammate)
    response = client.post(f"/api/v1/price-overrides?project={project.slug}", OVERRIDE, content_type="application/json")
    assert response.status_code == 201, response.json()
    IngestClient(api_key.secret).post(event(id="priced", input_tokens=1_000_000, output_tokens=1_000_000))
    call = Call.objects.get(span_id="priced")
    assert (call.cost, call.cost_source) == (Decimal("0.5"), "override")


def test_overrides_are_listed_updated_and_deleted(project, owner):
    client = logged_in(owner)
    created = client.post(f"/api/v1/price-overrides?project={project.slug}", OVERRIDE,
                          content_type="application/json").json()
    url = f"/api/v1/price-overrides/{created['id']}?project={project.slug}"
    assert client.patch(url, {"output_per_mtok": "0.5"}, content_type="application/json").status_code == 200
    assert PriceOverride.objects.get().output_per_mtok == Decimal("0.5")
    assert [row["id"] for row in client.get(f"/api/v1/price-overrides?project={project.slug}").json()] == [created["id"]]
    assert client.delete(url).status_code == 204
    assert not PriceOverride.objects.exists()
    # Changes through the API are audited like those made on the settings page.
    events = AuditEvent.objects.order_by("id")
    assert [event.action for event in events] == ["price_override.create", "price_override.update",
                                                   "price_override.delete"]
    assert {event.actor for event in events} == {owner}


@pytest.mark.parametrize("change, field", [
    ({"model_pattern": "gpt-(4o"}, "model_pattern"),
    ({"input_per_mtok": "-1"}, "input_per_mtok"),
    ({"cached_input_per_mtok": "100001"}, "cached_input_per_mtok"),  # would overflow the cost of a large call
    ({"output_per_mtok": "abc"}, "output_per_mtok"),
    ({"model_pattern": ""}, "model_pattern"),
])
def test_invalid_overrides_name_the_field(project, owner, change, field):
    response = logged_in(owner).post(f"/api/v1/price-overrides?project={project.slug}", {**OVERRIDE, **change},
                                     content_type="application/json")
    assert response.status_code == 400 and field in response.json()


def test_finance_and_keys_can_read_but_not_write(project, finance, api_key):
    url = f"/api/v1/price-overrides?project={project.slug}"
    assert logged_in(finance).get(url).status_code == 200
    assert logged_in(finance).post(url, OVERRIDE, content_type="application/json").status_code == 403
    assert bearer(api_key.secret).get("/api/v1/price-overrides").status_code == 200
    assert bearer(api_key.secret).post("/api/v1/price-overrides", OVERRIDE,
                                       content_type="application/json").status_code == 403


def test_another_organizations_override_is_404(project, owner, outsider):
    theirs = PriceOverride.objects.create(project=outsider.project, model_pattern="x", input_per_mtok=1,
                                          output_per_mtok=1, effective_from="2020-01-01T00:00:00Z")
    client = logged_in(owner)
    assert client.get(f"/api/v1/price-overrides/{theirs.pk}?project={project.slug}").status_code == 404
    assert client.delete(f"/api/v1/price-overrides/{theirs.pk}?project={outsider.project.slug}").status_code == 404
    assert PriceOverride.objects.filter(pk=theirs.pk).exists()


def test_a_new_override_applies_to_the_very_next_ingest_request(project, owner, api_key):
    ingest = IngestClient(api_key.secret)
    ingest.post(event(id="before", input_tokens=1_000_000, output_tokens=0))  # caches the project's prices
    logged_in(owner).post(f"/api/v1/price-overrides?project={project.slug}", OVERRIDE, content_type="application/json")
    ingest.post(event(id="after", input_tokens=1_000_000, output_tokens=0))
    assert Call.objects.get(span_id="before").cost_source == "catalog"
    after = Call.objects.get(span_id="after")
    assert (after.cost, after.cost_source) == (Decimal("0.1"), "override")
