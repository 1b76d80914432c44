"""First-run setup for `make run`: a demo login, a demo project with an API key, demo traffic.

The password and the key's secret are printed once, when they are created; later runs only
remind where to log in.
"""

from __future__ import annotations

import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from observatory.calls.models import Trace
from observatory.demo.traffic import demo_traffic_generate
from observatory.tenancy.services import bootstrap

DEMO_EMAIL = "demo@observatory.local"
DEMO_PROJECT = "demo"


class Command(BaseCommand):
    help = "Create the demo login, project and key on first run, and fill the project if it is empty."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--calls", type=int, default=int(os.environ.get("DEMO_CALLS", "60000")))
        parser.add_argument("--days", type=int, default=int(os.environ.get("DEMO_DAYS", "14")))

    def handle(self, *args, calls: int, days: int, **options) -> None:
        first_run = not get_user_model().objects.filter(email=DEMO_EMAIL).exists()
        url = f"{settings.SITE_URL}/"
        if first_run:
            password = secrets.token_urlsafe(12)
            result = bootstrap(email=DEMO_EMAIL, password=password, project_slug=DEMO_PROJECT, key_name="demo")
            self.stdout.write(
                "\n".join(
                    [
                        "",
                        "Observatory demo (shown once, keep it):",
                        f"  URL:         {url}",
                        f"  Login:       {DEMO_EMAIL}",
                        f"  Password:    {password}",
                        f"  Public key:  {result.issued.key.public_id}",
                        f"  Secret key:  {result.issued.secret}",
                        "",
                    ]
                )
            )
            project = result.project
        else:
            from observatory.tenancy.models import Project

            project = Project.objects.get(slug=DEMO_PROJECT)
            self.stdout.write(
                f"Log in at {url} as {DEMO_EMAIL} (password printed on first run; reset it with "
                f"`make manage ARGS='changepassword {DEMO_EMAIL}'`)."
            )
        if not Trace.objects.filter(project=project).exists():
            self.stdout.write(f"Filling the demo project with {calls:,} calls over {days} days...")
            stats = demo_traffic_generate(project=project, calls=calls, days=days, workers=min(2, os.cpu_count() or 1))
            self.stdout.write(f"Wrote {stats.calls:,} calls in {stats.traces:,} traces.")
