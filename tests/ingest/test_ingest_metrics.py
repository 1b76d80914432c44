"""Ingest outcomes reach the Prometheus counters /metrics exports."""

from prometheus_client import REGISTRY

from tests.ingest.conftest import event
from tests.ingest.otlp_builders import export_request, new_trace_id, post_otlp, span


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_native_ingest_counts_accepted_and_rejected_events(ingest):
    accepted = sample("observatory_ingest_events_accepted_total", endpoint="events")
    invalid = sample("observatory_ingest_events_rejected_total", endpoint="events", reason="invalid_event")
    unauthorized = sample("observatory_ingest_events_rejected_total", endpoint="events", reason="unauthorized")
    timed = sample("observatory_ingest_request_duration_seconds_count", endpoint="events")

    ingest.post({"events": [event(id="a"), event(id="b"), event(id="c", input_tokens=-1)]})
    ingest.post(event(id="d"), auth="Bearer sk-obs-wrong")

    assert sample("observatory_ingest_events_accepted_total", endpoint="events") == accepted + 2
    assert sample("observatory_ingest_events_rejected_total", endpoint="events", reason="invalid_event") == invalid + 1
    assert sample("observatory_ingest_events_rejected_total", endpoint="events",
                  reason="unauthorized") == unauthorized + 1
    assert sample("observatory_ingest_request_duration_seconds_count", endpoint="events") == timed + 1


def test_otlp_ingest_counts_spans(api_key):
    accepted = sample("observatory_ingest_events_accepted_total", endpoint="otlp")
    too_large = sample("observatory_ingest_events_rejected_total", endpoint="otlp", reason="unsupported_media_type")
    post_otlp(api_key.secret, export_request([span(name="a", trace_id=new_trace_id())]).SerializeToString())
    post_otlp(api_key.secret, b"{}", content_type="text/plain")
    assert sample("observatory_ingest_events_accepted_total", endpoint="otlp") == accepted + 1
    assert sample("observatory_ingest_events_rejected_total", endpoint="otlp",
                  reason="unsupported_media_type") == too_large + 1
