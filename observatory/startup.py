"""Turn the two ways a deployment commonly fails to start into one clear sentence.

A missing setting or an unreachable database is an operator's problem, not a bug: they get
a message naming what to fix and exit status 2, not a traceback.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from urllib.parse import urlsplit

from observatory.env import ConfigError


def describe_database_url(url: str | None) -> str:
    """The host, port and database of a URL, without its password."""
    if not url:
        return "the configured database"
    parts = urlsplit(url)
    host = parts.hostname or "local socket"
    port = f":{parts.port}" if parts.port else ""
    return f"{host}{port}{parts.path or ''}"


def database_error_sentence(error: BaseException) -> str:
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    where = describe_database_url(os.environ.get("DATABASE_URL"))
    return f"Cannot connect to the database at {where} (DATABASE_URL): {reason}"


@contextlib.contextmanager
def exit_on_startup_errors() -> Iterator[None]:
    import psycopg
    from django.db.utils import OperationalError

    try:
        yield
    except ConfigError as error:
        print(f"Configuration error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except (OperationalError, psycopg.OperationalError) as error:
        if not _is_connection_failure(error):
            raise
        print(database_error_sentence(error), file=sys.stderr)
        raise SystemExit(2) from None


def _is_connection_failure(error: BaseException) -> bool:
    """Only connection failures become one sentence; other OperationalErrors are real bugs."""
    import psycopg

    cause = error.__cause__ if error.__cause__ is not None else error
    if isinstance(cause, psycopg.OperationalError):
        # psycopg raises OperationalError without a SQLSTATE when it cannot connect at all.
        return getattr(cause, "sqlstate", None) in (None, "08000", "08001", "08006", "57P03", "3D000", "28000", "28P01")
    return False
