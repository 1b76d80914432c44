"""API key authentication for every API path: native, OTLP, Langfuse and the read API.

`Authorization: Bearer <secret>` or HTTP Basic with the public id as username and the secret
as password (what the Langfuse SDKs send).
"""

from __future__ import annotations

import base64
import binascii

from rest_framework import authentication, exceptions

from observatory.tenancy.models import ApiKey
from observatory.tenancy.recent_keys import forget, recent_api_key
from observatory.tenancy.services import api_key_authenticate


class AuthorizationError(Exception):
    """The Authorization header is missing, malformed, or names no active key."""


MISSING_AUTHORIZATION = (
    "Missing Authorization header: send 'Authorization: Bearer <secret key>' "
    "or HTTP Basic auth with the public key as username and the secret key as password."
)


INVALID_KEY = "Invalid API key: it is unknown or has been revoked."


def _scheme_and_credentials(header: str | None) -> tuple[str, str]:
    if not header:
        raise AuthorizationError(MISSING_AUTHORIZATION)
    scheme, _, credentials = header.strip().partition(" ")
    return scheme.lower(), credentials.strip()


def recent_api_key_from_authorization(header: str | None) -> tuple[ApiKey, bool]:
    """(key, proven): like api_key_from_authorization, but a Bearer key looked up by an earlier
    request comes back unproven (False), for a caller that stores with its guard and calls
    api_key_looked_up_again when that fails (observatory.tenancy.recent_keys)."""
    scheme, credentials = _scheme_and_credentials(header)
    if scheme != "bearer":
        return api_key_from_authorization(header), True
    key, proven = recent_api_key(credentials)
    if key is None:
        raise AuthorizationError(INVALID_KEY)
    return key, proven


def api_key_looked_up_again(header: str | None) -> ApiKey:
    """The key of a header whose remembered key was not proven by a write: forgotten, then
    looked up as on a first request (AuthorizationError if it was revoked meanwhile)."""
    scheme, credentials = _scheme_and_credentials(header)
    if scheme == "bearer":
        forget(credentials)
        return recent_api_key_from_authorization(header)[0]
    return api_key_from_authorization(header)


def api_key_from_authorization(header: str | None) -> ApiKey:
    scheme, credentials = _scheme_and_credentials(header)
    if scheme == "bearer":
        key = api_key_authenticate(secret=credentials)
    elif scheme == "basic":
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise AuthorizationError("Malformed Basic credentials: expected base64 of 'public_key:secret_key'.") from None
        public_id, sep, secret = decoded.partition(":")
        if not sep:
            raise AuthorizationError("Malformed Basic credentials: expected 'public_key:secret_key'.")
        key = api_key_authenticate(secret=secret, public_id=public_id)
    else:
        raise AuthorizationError("Unsupported Authorization scheme: use Bearer or Basic.")
    if key is None:
        raise AuthorizationError(INVALID_KEY)
    return key


class ApiKeyPrincipal:
    """Stands in for request.user when a request is authenticated by an API key."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False
    is_superuser = False

    def __init__(self, key: ApiKey) -> None:
        self.api_key = key
        self.project = key.project
        self.pk = None

    def __str__(self) -> str:
        return f"api key {self.api_key.public_id}"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """DRF authentication by API key. Requests without a key fall through to the session."""

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION")
        if not header:
            return None
        try:
            key = api_key_from_authorization(header)
        except AuthorizationError as error:
            raise exceptions.AuthenticationFailed(str(error)) from None
        return ApiKeyPrincipal(key), key

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="observatory"'

