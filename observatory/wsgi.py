"""WSGI entry point for granian (`python -m observatory.deploy web`)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "observatory.settings")

application = get_wsgi_application()
