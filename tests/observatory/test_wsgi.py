"""The WSGI entry point: a request's environ carries what the request brought, not the process
environment granian copies into it; and the collector leaves the loaded application alone."""

from __future__ import annotations

import json
import subprocess
import sys

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


# What a granian worker does with its target, in a process of its own: the collector's state
# is process-wide.
WORKER = """
import gc, json
import observatory.wsgi
imported = gc.get_freeze_count()
observatory.wsgi.web_application()
print(json.dumps([imported, gc.get_freeze_count(), gc.get_threshold()[0]]))
"""


def test_the_web_worker_freezes_what_the_application_holds_for_the_collector():
    shown = subprocess.run([sys.executable, "-c", WORKER], capture_output=True, text=True, timeout=120, check=False)
    assert shown.returncode == 0, shown.stderr
    imported, frozen, young_threshold = json.loads(shown.stdout.strip().splitlines()[-1])
    assert imported == 0  # importing the module (Django, tests) leaves the collector alone
    assert frozen > 10_000
    assert young_threshold >= GC_YOUNG_THRESHOLD
