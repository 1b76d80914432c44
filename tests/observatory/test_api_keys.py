import base64
import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone

from observatory.tenancy.authentication import AuthorizationError, api_key_from_authorization
from observatory.tenancy.models import ApiKey
from observatory.tenancy.services import api_key_authenticate, api_key_create, api_key_revoke


def basic(public_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{public_id}:{secret}".encode()).decode()


def test_secret_is_shown_once_and_only_its_digest_is_stored(project):
    issued = api_key_create(project=project, name="ci")
    stored = ApiKey.objects.get(pk=issued.key.pk)
    assert issued.secret.startswith("sk-obs-") and stored.public_id.startswith("pk-obs-")
    assert stored.secret_hash == hashlib.sha256(issued.secret.encode()).hexdigest()
    assert issued.secret not in {value for value in vars(stored).values() if isinstance(value, str)}
    assert stored.secret_hint == issued.secret[:11]


def test_bearer_takes_the_secret(api_key):
    key = api_key_from_authorization(f"Bearer {api_key.secret}")
    assert key.pk == api_key.key.pk


def test_basic_takes_public_id_and_secret(api_key):
    key = api_key_from_authorization(basic(api_key.key.public_id, api_key.secret))
    assert key.pk == api_key.key.pk


def test_basic_with_another_keys_public_id_is_refused(project, api_key):
    other = api_key_create(project=project, name="other")
    with pytest.raises(AuthorizationError, match="Invalid API key"):
        api_key_from_authorization(basic(other.key.public_id, api_key.secret))


@pytest.mark.parametrize(
    "header, message",
    [
        (None, "Missing Authorization header"),
        ("", "Missing Authorization header"),
        ("Token abc", "Unsupported Authorization scheme"),
        ("Basic not-base64!!", "Malformed Basic credentials"),
        ("Basic " + base64.b64encode(b"no-colon").decode(), "Malformed Basic credentials"),
        ("Bearer sk-obs-unknown", "Invalid API key"),
        ("Bearer pk-obs-not-a-secret", "Invalid API key"),
    ],
)
def test_bad_authorization_names_the_problem(db, header, message):
    with pytest.raises(AuthorizationError, match=message):
        api_key_from_authorization(header)


def test_revoked_key_stops_working_at_once(api_key):
    assert api_key_authenticate(secret=api_key.secret) is not None
    assert api_key_revoke(key=api_key.key) is True
    assert api_key_authenticate(secret=api_key.secret) is None
    assert api_key_revoke(key=api_key.key) is False  # already revoked


def test_last_used_time_is_recorded_but_not_written_on_every_request(api_key):
    assert ApiKey.objects.get(pk=api_key.key.pk).last_used_at is None
    api_key_authenticate(secret=api_key.secret)
    first = ApiKey.objects.get(pk=api_key.key.pk).last_used_at
    assert first is not None
    api_key_authenticate(secret=api_key.secret)
    assert ApiKey.objects.get(pk=api_key.key.pk).last_used_at == first

    ApiKey.objects.filter(pk=api_key.key.pk).update(last_used_at=timezone.now() - timedelta(minutes=5))
    api_key_authenticate(secret=api_key.secret)
    assert ApiKey.objects.get(pk=api_key.key.pk).last_used_at > first - timedelta(minutes=1)
