"""Create what is missing for a login and a project, and issue an API key; print JSON.

    python manage.py bootstrap --email you@example.com --password ... --project my-app

Running it again changes nothing that exists (an existing password is kept) and issues
another key, so scripts can call it on every deploy.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email, validate_slug

from observatory.tenancy.services import bootstrap


class Command(BaseCommand):
    help = "Create a login, an organization and a project if missing, and print a new API key as JSON."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--email", required=True)
        parser.add_argument("--password", help="Used only when the login does not exist yet.")
        parser.add_argument("--project", required=True, help="Project slug, e.g. my-app.")
        parser.add_argument("--key-name", default="bootstrap")

    def handle(self, *args, email: str, password: str | None, project: str, key_name: str, **options) -> None:
        try:
            validate_email(email)
        except ValidationError:
            raise CommandError(f"{email!r} is not a valid email address.") from None
        try:
            validate_slug(project)
        except ValidationError:
            raise CommandError(
                f"{project!r} is not a valid project slug: use letters, numbers, hyphens and underscores."
            ) from None
        if len(project) > 64:
            raise CommandError("The project slug is longer than 64 characters.")

        from django.contrib.auth import get_user_model

        if password is None and not get_user_model().objects.filter(email__iexact=email).exists():
            raise CommandError(f"{email} does not exist yet: give --password to create it.")

        result = bootstrap(email=email, password=password, project_slug=project, key_name=key_name)
        self.stdout.write(
            json.dumps(
                {
                    "project_id": result.project.pk,
                    "project": result.project.slug,
                    "organization": result.project.organization.slug,
                    "user": email.lower(),
                    "user_created": result.user_created,
                    "public_key": result.issued.key.public_id,
                    "secret_key": result.issued.secret,
                    "url": f"{settings.SITE_URL}/p/{result.project.slug}/",
                }
            )
        )
