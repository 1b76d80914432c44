"""Logs: JSON lines with the request id, nothing secret, and the id returned to the caller."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest
from pythonjsonlogger.json import JsonFormatter

from observatory.logs import (
    ContextFilter,
    SecretMaskingFilter,
    TextFormatter,
    json_formatter_options,
    mask_secrets,
)
from observatory.request_id import HEADER, request_id_bound, task_publish_add_request_id
from tests.observatory.test_settings import GOOD_KEY, assert_one_sentence, manage

pytestmark = pytest.mark.django_db


def handler_for(stream: io.StringIO, formatter: logging.Formatter) -> logging.Handler:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(ContextFilter())
    handler.addFilter(SecretMaskingFilter())
    return handler


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """What the production handler writes, captured from the root logger."""
    stream = io.StringIO()
    options = {key: value for key, value in json_formatter_options().items() if key != "()"}
    handler = handler_for(stream, JsonFormatter(**options))
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def records(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_request_without_an_id_gets_a_new_one(client):
    first, second = client.get("/healthz")[HEADER], client.get("/healthz")[HEADER]
    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert first != second


def test_a_well_formed_incoming_request_id_is_kept(client):
    assert client.get("/healthz", HTTP_X_REQUEST_ID="Root=1-67891233-abcdef:42")[HEADER] == "Root=1-67891233-abcdef:42"


@pytest.mark.parametrize("incoming", ["", "two words", "x" * 200, "forged\nline", "-leading-dash", "é"])
def test_a_malformed_incoming_request_id_is_replaced(client, incoming):
    assert re.fullmatch(r"[0-9a-f]{32}", client.get("/healthz", HTTP_X_REQUEST_ID=incoming)[HEADER])


def test_each_request_is_logged_once_with_its_id_and_without_headers_or_body(client, json_log):
    secret = "sk-obs-Zq8pW2xR7vL4mN9tK3bY6cH1"
    response = client.post(
        "/nowhere/?next=/private",
        data="confidential prompt text",
        content_type="text/plain",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
        HTTP_X_REQUEST_ID="req-0001",
    )
    assert response.status_code == 404
    request_lines = [r for r in records(json_log) if r["logger"] == "observatory.requests"]
    assert len(request_lines) == 1
    line = request_lines[0]
    assert line["level"] == "INFO"
    assert line["message"] == "POST /nowhere/ 404"
    assert (line["method"], line["path"], line["status"], line["request_id"]) == ("POST", "/nowhere/", 404, "req-0001")
    assert line["duration_ms"] >= 0
    # Django's own warning about the missing page carries the id too.
    assert {r["request_id"] for r in records(json_log)} == {"req-0001"}
    written = json_log.getvalue()
    for leak in (secret, "confidential prompt", "next=", "/private"):
        assert leak not in written


def test_probes_are_logged_below_info(client, json_log):
    client.get("/healthz")
    client.get("/readyz")
    assert not [r for r in records(json_log) if r["logger"] == "observatory.requests"]


def test_secrets_are_masked_in_messages_arguments_and_tracebacks(json_log):
    logger = logging.getLogger("observatory.test")
    try:
        raise ValueError("rejected header Authorization: Bearer abc.def-123")
    except ValueError:
        logger.exception("key %s failed", "sk-obs-Aq1Ws2Ed3Rf4Tg5Yh6")
    (line,) = records(json_log)
    assert line["message"] == "key sk-obs-[masked] failed"
    assert "Bearer [masked]" in line["exc_info"]
    assert "abc.def-123" not in json_log.getvalue()
    assert "Aq1Ws2Ed3Rf4Tg5Yh6" not in json_log.getvalue()


def test_celery_task_arguments_and_results_are_not_written_as_fields(json_log):
    # Celery passes a task's args, kwargs and return value as `data` on its log records.
    logging.getLogger("celery.app.trace").info("Task done", extra={"data": {"args": ["private"]}})
    (line,) = records(json_log)
    assert "data" not in line
    assert "private" not in json_log.getvalue()


def test_text_format_for_developers_shows_the_request_id():
    stream = io.StringIO()
    logger = logging.getLogger("observatory.test.text")
    logger.propagate = False
    logger.addHandler(handler_for(stream, TextFormatter()))
    try:
        with request_id_bound("req-42"):
            logger.warning("inside")
        logger.warning("outside")
    finally:
        logger.handlers.clear()
        logger.propagate = True
    inside, outside = stream.getvalue().splitlines()
    assert inside.endswith("WARNING observatory.test.text [req-42] inside")
    assert outside.endswith("WARNING observatory.test.text [-] outside")


def test_a_task_enqueued_during_a_request_carries_its_id():
    headers: dict = {}
    with request_id_bound("req-7"):
        task_publish_add_request_id(headers=headers)
    assert headers == {"request_id": "req-7"}
    outside: dict = {}
    task_publish_add_request_id(headers=outside)
    assert outside == {}


def test_production_logs_are_json_and_a_bad_log_format_stops_startup():
    code = "import logging; logging.getLogger('probe').warning('hello')"
    result = manage("shell", "-c", code, SECRET_KEY=GOOD_KEY, LOG_FORMAT=None)
    line = json.loads(result.stderr.strip().splitlines()[-1])
    assert (line["level"], line["logger"], line["message"]) == ("WARNING", "probe", "hello")
    assert_one_sentence(
        manage("check", SECRET_KEY=GOOD_KEY, LOG_FORMAT="xml"), "LOG_FORMAT='xml' is not one of: json, text."
    )


def test_masking_leaves_ordinary_prose_alone():
    assert mask_secrets("basic setup done; token counts 42") == "basic setup done; token counts 42"
    assert mask_secrets("Authorization: Basic cGstb2JzOnNrLW9icw==") == "Authorization: Basic [masked]"
    assert mask_secrets("see sk-obs-") == "see sk-obs-"
