"""Log configuration shared by Django, Celery and granian: JSON lines in production, plain
text for a developer, each record carrying the request id and, in a task, the task's id.

What is logged is kept free of secrets and prompt content by what callers log (method, path,
status; ids and counts), and, as a second line of defence, SecretMaskingFilter rewrites
anything that looks like an API secret or an Authorization value before any handler sees it.
"""

from __future__ import annotations

import logging
import re
import traceback

from pythonjsonlogger.core import RESERVED_ATTRS

LOG_FORMATS = ("json", "text")

# An API secret anywhere, and the credential after an Authorization scheme. Credentials are
# 8+ characters, so prose such as "basic setup" is left alone.
_SECRETS = re.compile(
    r"(?P<keep>sk-obs-)[A-Za-z0-9_\-]+"
    r"|(?P<scheme>\b(?:[Bb]earer|Basic)\s+)[A-Za-z0-9._~+/=\-]{8,}"
)
MASK = "[masked]"
# Record attributes never written to JSON: Django attaches the request object and Celery the
# task's arguments and return value ("data"), none of which belong in a log line.
_NOT_LOGGED = (*RESERVED_ATTRS, "request", "data", "color_message")


def mask_secrets(text: str) -> str:
    return _SECRETS.sub(lambda m: (m.group("keep") or m.group("scheme")) + MASK, text)


class SecretMaskingFilter(logging.Filter):
    """Mask secrets in the message, its arguments and the traceback of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_secrets(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info:
            # Render the traceback now, masked, so that no formatter renders it unmasked.
            record.exc_text = mask_secrets("".join(traceback.format_exception(*record.exc_info)).rstrip())
            record.exc_info = None
        if record.stack_info:
            record.stack_info = mask_secrets(record.stack_info)
        return True


class ContextFilter(logging.Filter):
    """Add the current request id and Celery task to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        from celery._state import get_current_task

        from observatory.request_id import current_request_id

        request_id = current_request_id()
        if request_id and not hasattr(record, "request_id"):
            record.request_id = request_id
        task = get_current_task()
        if task is not None and task.request.id and not hasattr(record, "task_id"):
            record.task_id = task.request.id
            record.task_name = task.name
        return True


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s", defaults={"request_id": "-"}
        )


def json_formatter_options() -> dict:
    return {
        "()": "pythonjsonlogger.json.JsonFormatter",
        "fmt": ["levelname", "name", "message"],
        "rename_fields": {"levelname": "level", "name": "logger"},
        "timestamp": True,
        "reserved_attrs": _NOT_LOGGED,
    }


def logging_config(*, log_format: str, level: str) -> dict:
    """A dictConfig for Django's LOGGING, Celery (which is told to keep it) and granian."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log_format must be one of {LOG_FORMATS}")
    formatter = json_formatter_options() if log_format == "json" else {"()": "observatory.logs.TextFormatter"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "context": {"()": "observatory.logs.ContextFilter"},
            "mask": {"()": "observatory.logs.SecretMaskingFilter"},
        },
        "formatters": {"default": formatter},
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "default", "filters": ["context", "mask"]},
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "pgserver": {"level": "WARNING"},
            # granian's own messages (its Rust side logs as "_granian" too) through the same
            # handler, once. Its access log is off: observatory.requests logs every request,
            # with its id.
            "_granian": {"handlers": ["console"], "level": level, "propagate": False},
            "granian.access": {"handlers": [], "propagate": False},
        },
    }


def log_settings_from_env() -> tuple[str, str]:
    """(LOG_FORMAT, LOG_LEVEL) as settings.py and the web server's settings both read them: JSON unless
    DEBUG is on, so production gets machine-readable lines without anyone asking."""
    from observatory.env import env_bool, env_choice

    log_format = env_choice("LOG_FORMAT", "text" if env_bool("DEBUG", False) else "json", LOG_FORMATS)
    level = env_choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error", "critical")).upper()
    return log_format, level
