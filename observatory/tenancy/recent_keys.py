"""API keys remembered between requests, proven by the write that uses them.

Looking the key up was a third of what a single-event ingest request cost (a round trip, a
prepared query and two model instances), paid again on every request of the same key. A web
process therefore remembers the keys it has looked up. A remembered key is not trusted on its
own word: the statement that stores the request's calls also checks, in the same snapshot,
that the key is still active with the same rate limit and that its project still has the
redaction mode and prices the rows were built with (`GUARD_OK_SQL`). When it does not hold,
nothing is stored, the key is forgotten, and the request looks it up again and is answered as
if it had never been remembered: a revoked key is refused from its first request after the
revocation commits, as before. Requests that store nothing look their key up before answering.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

import msgspec

from observatory.tenancy.models import ApiKey, Project
from observatory.tenancy.services import LAST_USED_RESOLUTION, SECRET_PREFIX, api_key_authenticate, secret_digest

# Looked up again after this long, which also keeps the key's last_used_at (updated by a
# lookup, at this resolution) current.
REMEMBER_SECONDS = LAST_USED_RESOLUTION.total_seconds()
MAX_REMEMBERED = 10_000

_remembered: dict[str, tuple[ApiKey, float]] = {}
_lock = threading.Lock()

# True when %(guard)s is null (nothing to prove), or when every key it names is active with
# the rate limit it names and belongs to its project, and that project has the redaction mode
# and prices_changed_at it names.
GUARD_OK_SQL = """(
    %(guard)s::jsonb IS NULL OR (
        (SELECT count(*) FROM jsonb_to_recordset(%(guard)s::jsonb -> 'keys') AS e(id bigint, rate int)
         JOIN tenancy_apikey k ON k.id = e.id
         WHERE k.revoked_at IS NULL AND k.rate_limit_per_second IS NOT DISTINCT FROM e.rate
           AND k.project_id = (%(guard)s::jsonb ->> 'project')::bigint)
        = jsonb_array_length(%(guard)s::jsonb -> 'keys')
        AND EXISTS (
            SELECT 1 FROM tenancy_project p
            WHERE p.id = (%(guard)s::jsonb ->> 'project')::bigint
              AND p.redaction_mode = %(guard)s::jsonb ->> 'redaction_mode'
              AND p.prices_changed_at IS NOT DISTINCT FROM (%(guard)s::jsonb ->> 'prices_changed_at')::timestamptz
        )
    )
)"""


def recent_api_key(secret: str) -> tuple[ApiKey | None, bool]:
    """(the key for a Bearer secret, whether it was looked up just now). A key remembered from
    an earlier request comes back unproven (False): the caller must store with `write_guard`
    and call `forget` and look it up again when the guard fails."""
    if not secret.startswith(SECRET_PREFIX):
        return None, True
    digest = secret_digest(secret)
    remembered = _remembered.get(digest)
    if remembered is not None and time.monotonic() - remembered[1] < REMEMBER_SECONDS:
        return remembered[0], False
    key = api_key_authenticate(secret=secret)
    with _lock:
        if key is None:
            _remembered.pop(digest, None)
        else:
            if len(_remembered) >= MAX_REMEMBERED:
                _remembered.clear()  # a process serving this many keys looks them up again
            _remembered[digest] = (key, time.monotonic())
    return key, True


def forget(secret: str) -> None:
    with _lock:
        _remembered.pop(secret_digest(secret), None)


def write_guard(keys: Iterable[ApiKey], project: Project) -> str:
    """The %(guard)s parameter: what must still hold of `keys` and of `project` (the project
    the rows were built for) when the write runs."""
    return msgspec.json.encode({
        "keys": [{"id": key.pk, "rate": key.rate_limit_per_second} for key in keys],
        "project": project.pk,
        "redaction_mode": project.redaction_mode,
        "prices_changed_at": None if project.prices_changed_at is None else project.prices_changed_at.isoformat(),
    }).decode()
