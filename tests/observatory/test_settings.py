"""Start-up with bad configuration stops with one sentence, never a traceback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from observatory.env import ConfigError, env_bool, env_int, env_list, secret_key_problem

ROOT = Path(__file__).resolve().parents[2]
GOOD_KEY = "k" + "Zx8vQ2mL9pR4tY7wB3nC6dF1gH5jK0sA-_eU" * 2


def manage(*args: str, **env: str | None) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS")}
    for name, value in env.items():
        if value is None:
            environ.pop(name, None)
        else:
            environ[name] = value
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, env=environ, capture_output=True, text=True,
        timeout=60,
    )


def assert_one_sentence(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1, message
    for fragment in fragments:
        assert fragment in message


def test_missing_secret_key_in_production_mode():
    result = manage("check", SECRET_KEY=None)
    assert_one_sentence(result, "Configuration error: SECRET_KEY is not set", "required when DEBUG is off")


@pytest.mark.parametrize(
    "key, reason",
    [
        ("short", "5 characters long"),
        ("django-insecure-" + "a" * 60, "development key"),
        ("ab" * 40, "fewer than 5 distinct"),
    ],
)
def test_weak_secret_key_in_production_mode(key, reason):
    result = manage("check", SECRET_KEY=key)
    assert_one_sentence(result, "SECRET_KEY is too weak for production", reason)


def test_unreachable_database():
    result = manage("migrate", SECRET_KEY=GOOD_KEY, DATABASE_URL="postgres://nobody@127.0.0.1:1/nowhere")
    assert_one_sentence(result, "Cannot connect to the database at 127.0.0.1:1/nowhere (DATABASE_URL)")
    assert result.returncode == 2


def test_database_url_that_is_not_postgres():
    result = manage("check", SECRET_KEY=GOOD_KEY, DATABASE_URL="mysql://root@127.0.0.1/db")
    assert_one_sentence(result, "DATABASE_URL must point at PostgreSQL")


def test_bootstrap_with_invalid_email_from_the_command_line():
    result = manage("bootstrap", "--email", "nope", "--password", "x" * 12, "--project", "p", SECRET_KEY=GOOD_KEY)
    assert_one_sentence(result, "'nope' is not a valid email address.")


def test_debug_is_off_by_default_and_production_settings_are_safe():
    code = (
        "from django.conf import settings as s;"
        "print(s.DEBUG, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS > 0, s.ALLOWED_HOSTS)"
    )
    result = manage("shell", "-c", code, SECRET_KEY=GOOD_KEY)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False True True True []"


def test_env_readers_reject_bad_values():
    with pytest.raises(ConfigError, match="DEBUG='maybe' is not a boolean"):
        env_bool("DEBUG", False, environ={"DEBUG": "maybe"})
    with pytest.raises(ConfigError, match="RETENTION_DAYS='thirty' is not a whole number"):
        env_int("RETENTION_DAYS", 30, environ={"RETENTION_DAYS": "thirty"})
    with pytest.raises(ConfigError, match="RETENTION_DAYS=0 is too small: the minimum is 1"):
        env_int("RETENTION_DAYS", 30, minimum=1, environ={"RETENTION_DAYS": "0"})
    assert env_bool("DEBUG", False, environ={"DEBUG": "Yes"}) is True
    assert env_list("ALLOWED_HOSTS", [], environ={"ALLOWED_HOSTS": "a.example, b.example,"}) == ["a.example", "b.example"]
    assert secret_key_problem(GOOD_KEY) is None


def test_bad_setting_from_environment_stops_startup():
    result = manage("check", SECRET_KEY=GOOD_KEY, RETENTION_DAYS="forever")
    assert_one_sentence(result, "RETENTION_DAYS='forever' is not a whole number")


def test_the_worker_memory_ceiling_reaches_celery_in_kib():
    code = "from observatory.celery import app; print(app.conf.worker_max_memory_per_child)"
    result = manage("shell", "-c", code, SECRET_KEY=GOOD_KEY, CELERY_WORKER_MAX_MEMORY_MB="256")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == str(256 * 1024)
    assert_one_sentence(manage("check", SECRET_KEY=GOOD_KEY, CELERY_WORKER_MAX_MEMORY_MB="10"),
                        "CELERY_WORKER_MAX_MEMORY_MB=10 is too small: the minimum is 64")
