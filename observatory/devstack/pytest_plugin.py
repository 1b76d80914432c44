"""pytest plugin: point the test run at the embedded PostgreSQL when DATABASE_URL is unset.

It must run before pytest-django reads the settings, hence a wrapper around
pytest_load_initial_conftests (pytest-django configures Django in that hook).
"""

from __future__ import annotations

import os

import pytest

from observatory.devstack.embedded_postgres import ensure_database_url


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(early_config, parser, args):
    from observatory.devstack.__main__ import DEVDATA

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "observatory.settings")
    # Tests run with production settings except where a test says otherwise; they need a
    # key to start with, and plain HTTP on the test client.
    os.environ.setdefault("SECRET_KEY", "test-only-" + "x7Rq2vLp9sKd4mNb8cZt3wYh6gFj1aXe5uVo0iPl")
    os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
    # Django's test client says "testserver"; WSGI-level tools (schemathesis) say "localhost".
    os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
    # Live-server tests serve each request on its own thread; persistent connections would
    # outlive those threads and keep the test database from being dropped.
    os.environ.setdefault("DATABASE_CONN_MAX_AGE", "0")
    ensure_database_url(DEVDATA)
    return (yield)
