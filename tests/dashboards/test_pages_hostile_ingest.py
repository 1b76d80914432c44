"""Hostile text sent through the real ingest endpoint, as an application would send it, then
shown on the trace page: as text, never as markup or template code."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client

from tests.conftest import PASSWORD
from tests.ingest.conftest import IngestClient, event
from tests.ingest.test_hostile_text import STORABLE

pytestmark = pytest.mark.django_db


@pytest.fixture
def storing(project):
    project.redaction_mode = "store"
    project.save()
    return project


def test_hostile_text_ingested_over_http_is_shown_as_text_on_the_trace_page(storing, api_key, owner):
    sent = [event(id=f"page-{index}", trace_id="hostile-trace", name=text, model=text, user_id=text,
                  error_message=text, input=text, output=text, metadata={"note": text}, tags=[text])
            for index, text in enumerate(STORABLE.values())]
    assert IngestClient(api_key.secret).post({"events": sent}).status_code == 200
    client = Client()
    assert client.post("/login/", {"username": owner.email, "password": PASSWORD}).status_code == 302
    response = client.get(f"/p/{storing.slug}/trace/hostile-trace")
    assert response.status_code == 200
    page = response.content.decode()
    assert "<script>alert(1)</script>" not in page and "<img src=x onerror" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "{{ settings.SECRET_KEY }}{% debug %}" in page  # shown, not evaluated
    assert settings.SECRET_KEY not in page
    assert "&#x27;; DROP TABLE calls_call; --" in page
    # Shown, and isolated: the override cannot reorder the page text after the name.
    assert "<bdi>invoice\u202etxt.exe</bdi>" in page
    assert "\x00" not in page and "before\ufffdafter" in page
    listed = client.get(f"/p/{storing.slug}/traces/", {"show": "all"})
    assert listed.status_code == 200
    listed = listed.content.decode()
    assert "<bdi>invoice\u202etxt.exe</bdi>" in listed  # every table cell is isolated too
