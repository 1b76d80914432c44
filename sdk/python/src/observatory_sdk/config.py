"""Client settings: explicit arguments first, then OBSERVATORY_* environment variables.

Mistakes a developer makes once (a batch size the server refuses, a URL without a scheme)
raise at construction, where they are seen; nothing after construction raises.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit

# The server accepts up to 10,000 events and INGEST_MAX_BODY_BYTES (10 MiB by default,
# before and after decompression) per request; staying well under both leaves room for a
# server configured below its defaults.
MAX_BATCH_SIZE = 10_000
DEFAULT_MAX_REQUEST_BYTES = 5_000_000

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class ClientConfig:
    base_url: str | None
    secret_key: str | None
    enabled: bool
    environment: str | None = None
    release: str | None = None
    capture_content: bool = True
    batch_size: int = 100
    flush_interval: float = 1.0
    max_queue_size: int = 10_000
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    request_timeout: float = 10.0
    max_retries: int | None = 10
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    gzip: bool = True
    exit_timeout: float = 5.0

    @property
    def events_url(self) -> str:
        assert self.base_url is not None
        return self.base_url.rstrip("/") + "/api/v1/events"


def _env_flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{name}={raw!r}: expected 1/0, true/false, yes/no or on/off")


def config_build(
    *,
    base_url: str | None,
    secret_key: str | None,
    enabled: bool | None,
    environment: str | None,
    release: str | None,
    capture_content: bool | None,
    **tuning,
) -> ClientConfig:
    base_url = base_url or os.environ.get("OBSERVATORY_URL") or None
    secret_key = secret_key or os.environ.get("OBSERVATORY_SECRET_KEY") or None
    if enabled is None:
        enabled = _env_flag("OBSERVATORY_ENABLED", True) and bool(base_url and secret_key)
    elif enabled and not (base_url and secret_key):
        raise ValueError("Observatory needs base_url and secret_key (or OBSERVATORY_URL and OBSERVATORY_SECRET_KEY)")
    if base_url:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base_url must be an http:// or https:// URL, not {base_url!r}")
    config = ClientConfig(
        base_url=base_url,
        secret_key=secret_key,
        enabled=enabled,
        environment=environment or os.environ.get("OBSERVATORY_ENVIRONMENT") or None,
        release=release or os.environ.get("OBSERVATORY_RELEASE") or None,
        capture_content=(
            _env_flag("OBSERVATORY_CAPTURE_CONTENT", True) if capture_content is None else capture_content
        ),
        **tuning,
    )
    _check_tuning(config)
    return config


def _check_tuning(config: ClientConfig) -> None:
    if not 1 <= config.batch_size <= MAX_BATCH_SIZE:
        raise ValueError(f"batch_size must be between 1 and {MAX_BATCH_SIZE}, not {config.batch_size}")
    if config.max_queue_size < 1:
        raise ValueError(f"max_queue_size must be at least 1, not {config.max_queue_size}")
    if config.max_retries is not None and config.max_retries < 0:
        raise ValueError(f"max_retries must be 0 or more (or None: until shutdown), not {config.max_retries}")
    for name in ("flush_interval", "request_timeout", "backoff_initial", "backoff_max", "exit_timeout"):
        if getattr(config, name) < 0:
            raise ValueError(f"{name} must not be negative")
    if config.max_request_bytes < 1024:
        raise ValueError("max_request_bytes below 1 KiB cannot hold an event")
