"""An embedded PostgreSQL (the `pgserver` package) for when DATABASE_URL is not set.

The cluster lives under .devdata/postgres, listens on a Unix socket only, and stops when the
last process that asked for it exits.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

DATABASE_NAME = "observatory"


def embedded_database_url(devdata_dir: Path) -> str:
    """Start (or join) the embedded cluster and return a DATABASE_URL for its database."""
    import warnings

    from platformdirs.api import RuntimeDirWarning

    # pgserver keeps a lock file in the user runtime dir; without XDG_RUNTIME_DIR it uses /tmp.
    warnings.filterwarnings("ignore", category=RuntimeDirWarning)
    import pgserver
    import psycopg

    devdata_dir.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(devdata_dir / "postgres", cleanup_mode="stop")
    info = server.get_postmaster_info()
    socket_dir = str(info.socket_dir)
    with psycopg.connect(server.get_uri(), autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
    return f"postgres://postgres@{quote(socket_dir, safe='')}/{DATABASE_NAME}"


def ensure_database_url(devdata_dir: Path) -> str:
    """DATABASE_URL from the environment, or the embedded cluster's (exported for children)."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if url:
        return url
    url = embedded_database_url(devdata_dir)
    os.environ["DATABASE_URL"] = url
    return url
