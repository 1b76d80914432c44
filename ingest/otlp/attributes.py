"""OTLP attribute values as Python values, read with the tolerance exporters need.

Instrumentations disagree on types (token counts as strings, JSON documents in string
attributes, lists as comma-separated text), so reads coerce what is unambiguous and report
what is not: a wrong-typed attribute is ignored with a warning, and its span is still kept.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable
from typing import Any

import msgspec

from ingest.signals import whole_number
from observatory.calls.records import MAX_TOKENS


def any_value(value) -> Any:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return value.double_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {item.key: any_value(item.value) for item in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return None


def attributes_dict(key_values: Iterable) -> dict[str, Any]:
    return {item.key: any_value(item.value) for item in key_values}


class Attributes:
    """A span's attributes, remembering which were read so the rest can go to metadata."""

    def __init__(self, values: dict[str, Any], warnings: list[str]) -> None:
        self.values = values
        self.read: set[str] = set()
        self.warnings = warnings

    def _first(self, keys: tuple[str, ...]) -> tuple[str, Any] | tuple[None, None]:
        for key in keys:
            value = self.values.get(key)
            if value is not None and value != "" and value != []:
                self.read.add(key)
                return key, value
        return None, None

    def raw(self, *keys: str) -> tuple[str, Any] | tuple[None, None]:
        """(key, value) of the first key present, as sent, for readers with their own checks."""
        return self._first(keys)

    def has(self, *keys: str) -> bool:
        return any(key in self.values for key in keys)

    def text(self, *keys: str) -> str | None:
        key, value = self._first(keys)
        if key is None:
            return None
        if isinstance(value, str):
            return value
        if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
            return value[0]
        return msgspec.json.encode(value).decode() if isinstance(value, dict | list) else str(value)

    def integer(self, *keys: str) -> int | None:
        key, value = self._first(keys)
        if key is None:
            return None
        number = whole_number(value)
        if number is None:
            self.warnings.append(f"{key} is not a whole number ({value!r}); ignored")
            return None
        if not 0 <= number <= MAX_TOKENS:
            self.warnings.append(f"{key}={number} is out of range; ignored")
            return None
        return number

    def number(self, *keys: str) -> float | None:
        key, value = self._first(keys)
        if key is None:
            return None
        number = _as_float(value)
        if number is None or not math.isfinite(number) or number < 0:
            self.warnings.append(f"{key} is not a non-negative number ({value!r}); ignored")
            return None
        return number

    def document(self, *keys: str) -> Any:
        """A value that may carry JSON in a string attribute (what most SDKs do for objects)."""
        key, value = self._first(keys)
        if key is None:
            return None
        return parse_json_text(value)

    def strings(self, *keys: str) -> list[str]:
        key, value = self._first(keys)
        if key is None:
            return []
        if isinstance(value, list):
            return [item if isinstance(item, str) else str(item) for item in value]
        parsed = parse_json_text(value)
        if isinstance(parsed, list):
            return [item if isinstance(item, str) else str(item) for item in parsed]
        return [part.strip() for part in str(value).split(",") if part.strip()]

    def prefixed(self, prefix: str) -> dict[str, Any]:
        found = {}
        for key, value in self.values.items():
            if key.startswith(prefix):
                self.read.add(key)
                found[key[len(prefix):]] = value
        return found

    def unread(self) -> dict[str, Any]:
        return {key: value for key, value in self.values.items() if key not in self.read}


def parse_json_text(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    stripped = value.strip()
    if stripped[:1] in ("{", "[", '"'):
        try:
            return msgspec.json.decode(stripped)
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
            return value
    return value


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None
