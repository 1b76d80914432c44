"""The WSGI entry point: a request's environ carries what the request brought, not the process
environment granian copies into it; and the collector leaves the loaded application alone."""

from __future__ import annotations

import gc

from observatory.wsgi import GC_YOUNG_THRESHOLD, without_process_environment


def test_the_process_environment_does_not_reach_request_meta(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://observatory:hunter2@db/observatory")
    monkeypatch.setenv("HTTP_X_FORWARDED_FOR", "10.9.8.7")
    seen = {}

    def app(environ, start_response):
        seen.update(environ)
        return [b""]

    application = without_process_environment(app)
    granian_environ = {  # granian: the process environment, then the request's own keys over it
        "DATABASE_URL": "postgres://observatory:hunter2@db/observatory", "HTTP_X_FORWARDED_FOR": "10.9.8.7",
        "wsgi.url_scheme": "http", "REQUEST_METHOD": "GET", "PATH_INFO": "/healthz", "HTTP_HOST": "web",
    }
    application(dict(granian_environ), lambda *args: None)
    assert "DATABASE_URL" not in seen and "HTTP_X_FORWARDED_FOR" not in seen
    assert seen["PATH_INFO"] == "/healthz" and seen["HTTP_HOST"] == "web"

    # A request header that happens to share a variable's name, with a value of its own, stays.
    application(dict(granian_environ, HTTP_X_FORWARDED_FOR="203.0.113.5"), lambda *args: None)
    assert seen["HTTP_X_FORWARDED_FOR"] == "203.0.113.5"


def test_loading_the_application_freezes_what_it_holds_for_the_collector():
    # observatory.wsgi was imported above, as granian imports it in each worker.
    assert gc.get_freeze_count() > 10_000
    assert gc.get_threshold()[0] >= GC_YOUNG_THRESHOLD
