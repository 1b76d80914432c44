"""WSGI entry point for granian (`python -m observatory.deploy web`)."""

import gc
import os

from django.core.wsgi import get_wsgi_application

from observatory.pricing.catalog import catalog_load

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "observatory.settings")


def without_process_environment(app):
    """granian starts every request's environ from a copy of the process environment (as CGI
    did), so request.META would carry SECRET_KEY, DATABASE_URL with its password, METRICS_TOKEN
    and the rest to anything that logs or reports it. Keep only what the request brought: drop
    each variable that still holds the process's value (a request header of the same name
    overrides it in granian, so a different value is the request's own)."""
    inherited: dict[str, str] | None = None

    def application(environ, start_response):
        nonlocal inherited
        if inherited is None:  # granian copies the environment once the app is loaded: so do we
            inherited = dict(os.environ)
        for name, value in inherited.items():
            if environ.get(name) == value:
                del environ[name]
        return app(environ, start_response)

    return application


# Young collections run after this many more container objects (dicts, lists) are made than
# freed. Python's 700 is a few single-event requests, or a fraction of one batch: a batch of
# 1,000 events decodes into several thousand dicts, all alive until the request ends.
GC_YOUNG_THRESHOLD = 50_000


def tune_garbage_collection() -> None:
    """Spare requests the collector's work on what lives as long as the process.

    Once the application is loaded, with the price catalogue it would otherwise load on its
    first priced call, the objects it holds (modules, Django's settings and URL patterns, the
    catalogue: over a hundred thousand) are frozen: no collection looks at them again, where
    each full one walked them all, tens of milliseconds every few thousand ingested events (a
    quarter of the Python time of batched ingest, measured in bench/README.md). What requests
    make and drop is collected as before, in fewer, larger young collections."""
    catalog_load()
    gc.freeze()
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(young, GC_YOUNG_THRESHOLD), middle, old)


def with_ingest_fast_path(app):
    """POSTs to the ingest endpoints go to ingest.wsgi's handler (Django's request cycle cut
    to what they need), every other request to Django's."""
    from ingest.wsgi import IngestWSGIHandler, is_ingest_request  # once Django is set up

    ingest = IngestWSGIHandler()

    def application(environ, start_response):
        if is_ingest_request(environ):
            return ingest(environ, start_response)
        return app(environ, start_response)

    return application


application = without_process_environment(with_ingest_fast_path(get_wsgi_application()))


def web_application():
    """granian's target (--factory, called once in each worker): the application, with the
    collector tuned for serving. Importing this module (Django's WSGI_APPLICATION, tests) does
    not touch the collector."""
    tune_garbage_collection()
    return application
