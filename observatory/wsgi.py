"""WSGI entry point for granian (`python -m observatory.deploy web`)."""

import os

from django.core.wsgi import get_wsgi_application

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


application = without_process_environment(get_wsgi_application())
