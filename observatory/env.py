"""Small, strict readers for settings that come from the environment.

Each reader either returns a value of the right type or raises ConfigError with one
sentence that names the variable and says what is wrong, so a misconfigured deployment
stops at start-up with a message an operator can act on.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ConfigError(ImproperlyConfigured):
    """A setting read from the environment is missing or invalid."""


def env_str(name: str, default: str | None = None, *, environ: Mapping[str, str] = os.environ) -> str | None:
    value = environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip()


def env_required(name: str, why: str, *, environ: Mapping[str, str] = os.environ) -> str:
    value = env_str(name, environ=environ)
    if value is None:
        raise ConfigError(f"{name} is not set: {why}")
    return value


def env_bool(name: str, default: bool, *, environ: Mapping[str, str] = os.environ) -> bool:
    value = environ.get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(f"{name}={value!r} is not a boolean: use 1/0, true/false, yes/no or on/off.")


def env_int(
    name: str,
    default: int,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    environ: Mapping[str, str] = os.environ,
) -> int:
    value = env_str(name, environ=environ)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not a whole number.") from None
    if minimum is not None and number < minimum:
        raise ConfigError(f"{name}={number} is too small: the minimum is {minimum}.")
    if maximum is not None and number > maximum:
        raise ConfigError(f"{name}={number} is too large: the maximum is {maximum}.")
    return number


def env_list(name: str, default: list[str], *, environ: Mapping[str, str] = os.environ) -> list[str]:
    value = env_str(name, environ=environ)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def secret_key_problem(key: str) -> str | None:
    """Why `key` is not fit to sign production sessions, or None when it is.

    Mirrors Django's own deploy check (security.W009) so that a weak key stops the process
    instead of producing a warning nobody reads.
    """
    if key.startswith("django-insecure-"):
        return "it is Django's generated development key"
    if len(key) < 50:
        return f"it is {len(key)} characters long; use at least 50"
    if len(set(key)) < 5:
        return "it uses fewer than 5 distinct characters"
    return None


def env_choice(name: str, default: str, choices: tuple[str, ...], *, environ: Mapping[str, str] = os.environ) -> str:
    value = env_str(name, environ=environ)
    if value is None:
        return default
    if value.lower() not in choices:
        raise ConfigError(f"{name}={value!r} is not one of: {', '.join(choices)}.")
    return value.lower()


def env_networks(
    name: str, *, environ: Mapping[str, str] = os.environ
) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Comma-separated addresses or CIDR networks (`10.0.0.0/8, 127.0.0.1`)."""
    networks = []
    for item in env_list(name, [], environ=environ):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(f"{name} contains {item!r}, which is not an IP address or CIDR network.") from None
    return networks


def env_host_port(name: str, *, environ: Mapping[str, str] = os.environ) -> tuple[str, int] | None:
    """`host:port` (`0.0.0.0:9808`, `[::]:9808`), or None when unset."""
    value = env_str(name, environ=environ)
    if value is None:
        return None
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{name}={value!r} is not host:port (for example 0.0.0.0:9808).")
    return host.strip("[]"), int(port)
