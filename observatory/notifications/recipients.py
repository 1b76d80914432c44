"""Who a budget or rule tells: email addresses and webhook URLs, in one list.

An entry that starts with http:// or https:// is a webhook (Slack-compatible incoming
webhook, or anything that accepts the same JSON); anything else must be an email address.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email

from observatory.notifications.models import Channel

MAX_RECIPIENTS = 20
_WEBHOOK_SCHEMES = ("http://", "https://")
_url_validator = URLValidator(schemes=["http", "https"])


def recipient_channel(value: str) -> Channel:
    return Channel.WEBHOOK if value.lower().startswith(_WEBHOOK_SCHEMES) else Channel.EMAIL


def recipients_clean(values: Iterable[str]) -> list[str]:
    """The recipients trimmed and without repeats, or ValidationError naming the bad one."""
    cleaned: list[str] = []
    for raw in values:
        value = str(raw).strip()
        if not value:
            raise ValidationError("An empty recipient: give an email address or an http(s) webhook URL.")
        if recipient_channel(value) == Channel.WEBHOOK:
            try:
                _url_validator(value)
            except ValidationError:
                raise ValidationError(f"{value!r} is not a valid http(s) webhook URL.") from None
        else:
            try:
                validate_email(value)
            except ValidationError:
                raise ValidationError(
                    f"{value!r} is neither an email address nor an http(s) webhook URL."
                ) from None
        if value not in cleaned:
            cleaned.append(value)
    if len(cleaned) > MAX_RECIPIENTS:
        raise ValidationError(f"At most {MAX_RECIPIENTS} recipients.")
    return cleaned


def validate_recipients(values: Iterable[str]) -> None:
    """recipients_clean as a model field validator."""
    recipients_clean(values)


def recipient_masked(value: str) -> str:
    """A webhook URL with its path hidden: the path of a Slack webhook is its password, and
    people who may read a budget need not be able to post to its channel."""
    if recipient_channel(value) != Channel.WEBHOOK:
        return value
    parts = urlsplit(value)
    return f"{parts.scheme}://{parts.hostname or ''}/…{value[-4:]}"
