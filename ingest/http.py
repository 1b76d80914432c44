"""HTTP plumbing shared by every way in: the request body within limits, and JSON decoding.

The body is read with a hard limit before and after decompression, so neither a 100 MB
upload nor a gzip bomb can make a worker hold more than INGEST_MAX_BODY_BYTES of it.
"""

from __future__ import annotations

import re
import zlib
from typing import Any

import msgspec
from django.conf import settings
from django.http import HttpRequest

# Decompression output is produced in chunks of this size, each checked against the limit.
_INFLATE_CHUNK = 256 * 1024


class IngestError(Exception):
    """A request-level problem: nothing in the request was stored."""

    status = 400

    def __init__(self, message: str, *, status: int = 400, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.field = field


def body_read(request: HttpRequest) -> bytes:
    """The request body, decompressed, or IngestError(413/415/400)."""
    limit = settings.INGEST_MAX_BODY_BYTES
    declared = request.META.get("CONTENT_LENGTH")
    expected = 0
    if declared:
        try:
            expected = int(declared)
        except ValueError:
            raise IngestError("Content-Length is not a number.") from None
        if expected > limit:
            raise IngestError(_too_large(limit), status=413)
    try:
        raw = request.read(limit + 1)
    except OSError:
        # The connection failed mid-body (a server that times reads out raises here).
        raise IngestError(_incomplete(expected), status=408) from None
    if len(raw) > limit:
        raise IngestError(_too_large(limit), status=413)
    if len(raw) < expected:
        # The client went away mid-body: granian hands over what arrived without an error
        # (it has no body read timeout; see tests/system/test_slow_clients.py). Refused by name
        # rather than as whatever the cut-off JSON fails with.
        raise IngestError(_incomplete(expected, len(raw)), status=400)
    # From META rather than request.headers: building that mapping of every header cost a
    # single-event request 2% of its web CPU, for this one header.
    encoding = request.META.get("HTTP_CONTENT_ENCODING", "identity").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding in ("gzip", "x-gzip", "deflate"):
        return _inflate(raw, limit=limit, gzip=encoding != "deflate")
    raise IngestError(f"Content-Encoding {encoding!r} is not supported: send gzip or no encoding.", status=415)


def _incomplete(expected: int, received: int | None = None) -> str:
    got = "" if received is None else f" after {received:,} of the {expected:,} bytes Content-Length announced"
    return f"The request body ended{got} before it was complete: send it whole, then retry."


def _too_large(limit: int) -> str:
    return f"The request body is larger than {limit:,} bytes: send fewer events per request."


def _inflate(data: bytes, *, limit: int, gzip: bool) -> bytes:
    # wbits: 16+ for a gzip header, 32+ to accept zlib or gzip for "deflate" (clients disagree).
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS if gzip else 32 + zlib.MAX_WBITS)
    parts: list[bytes] = []
    size = 0
    pending = data
    try:
        while pending:
            chunk = inflater.decompress(pending, _INFLATE_CHUNK)
            size += len(chunk)
            if size > limit:
                raise IngestError(
                    f"The request body inflates to more than {limit:,} bytes: send fewer events per request.",
                    status=413,
                )
            parts.append(chunk)
            pending = inflater.unconsumed_tail
            if not chunk and not pending:
                break
        parts.append(inflater.flush())
    except zlib.error as error:
        raise IngestError(f"The body is not valid {'gzip' if gzip else 'deflate'} data ({error}).") from None
    if not inflater.eof:
        raise IngestError(f"The body is not valid {'gzip' if gzip else 'deflate'} data: it is truncated.")
    return b"".join(parts)


def require_content_type(request: HttpRequest, *allowed: str) -> str:
    """The request's media type if it is one of `allowed`, else IngestError(415)."""
    media_type = request.content_type.split(";")[0].strip().lower() if request.content_type else ""
    if media_type not in allowed:
        shown = media_type or "none"
        raise IngestError(f"Content-Type must be {' or '.join(allowed)}, not {shown}.", status=415)
    return media_type


def json_decode(body: bytes) -> Any:
    """Decode JSON with messages that say what is wrong and where."""
    if body.startswith(b"\xef\xbb\xbf"):
        body = body[3:]  # a UTF-8 byte order mark is harmless; some clients add one
    if not body.strip():
        raise IngestError("The request body is empty: send a JSON event or {\"events\": [...]}.")
    try:
        return msgspec.json.decode(body)
    except RecursionError:
        raise IngestError("The JSON is nested too deeply.") from None
    except UnicodeDecodeError as error:
        raise IngestError(f"The body is not valid UTF-8 (byte {error.start}).") from None
    except msgspec.ValidationError as error:
        # msgspec reports numbers beyond float range as validation errors while decoding.
        raise IngestError(f"Invalid JSON: {error}.") from None
    except msgspec.DecodeError as error:
        raise IngestError(_describe_decode_error(body, str(error))) from None


# A \uXXXX escape of half a UTF-16 surrogate pair without its other half (an odd number of
# backslashes before it, so that an escaped backslash followed by "u" is not taken for one).
_LONE_SURROGATE = re.compile(
    rb"(?<!\\)(?:\\\\)*(\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    rb"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2})"
)


def _describe_decode_error(body: bytes, message: str) -> str:
    lone = _LONE_SURROGATE.search(body)
    if lone:
        escape = lone.group(1).decode()
        return (f"Invalid JSON at byte {lone.start(1)}: {escape} is half of a UTF-16 surrogate pair, not a "
                "character; send the pair, or the character itself in UTF-8.")
    marker = "(byte "
    if marker in message:
        try:
            position = int(message.rsplit(marker, 1)[1].rstrip(")"))
        except ValueError:
            position = -1
        if position >= 0:
            ahead = body[position : position + 9]
            if ahead.startswith((b"NaN", b"Infinity", b"-Infinity")):
                return f"Invalid JSON at byte {position}: NaN and Infinity are not JSON numbers; send null."
    if "utf-8" in message.lower():
        return "The body is not valid UTF-8."
    return f"Invalid JSON: {message}."
