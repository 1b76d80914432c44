"""`python -m observatory.devstack run | manage ARGS... | browser`

run      embedded PostgreSQL (unless DATABASE_URL is set), migrate, demo login/project/key and
         demo traffic on first run, then the web app, a Celery worker and Celery beat until Ctrl-C.
manage   any manage.py command against the same database, e.g. `manage createsuperuser`.
browser  install Debian's chromium for the browser tests when it is missing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from observatory.devstack.embedded_postgres import ensure_database_url
from observatory.devstack.supervisor import Child, supervise

ROOT = Path(__file__).resolve().parents[2]
DEVDATA = Path(os.environ.get("OBSERVATORY_DEVDATA", ROOT / ".devdata"))
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))


def _manage(*args: str) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT)
    if result.returncode != 0:
        raise SystemExit(result.returncode)


def _prepare_environment() -> None:
    # `make run` is a developer's or evaluator's machine: debug pages and plain HTTP.
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "observatory.settings")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    ensure_database_url(DEVDATA)


def run(port: int) -> int:
    _prepare_environment()
    os.environ.setdefault("SITE_URL", f"http://127.0.0.1:{port}")
    _manage("migrate", "--noinput", "-v", "0")
    _manage("demo_setup")
    broker = os.environ.get("CELERY_BROKER_URL") or "files under .devdata/broker (no broker server needed)"
    print(f"Celery broker: {broker}", flush=True)
    celery = [sys.executable, "-m", "celery", "-A", "observatory"]
    children = [
        Child("web", [sys.executable, str(ROOT / "manage.py"), "runserver", f"127.0.0.1:{port}"]),
        Child("worker", [*celery, "worker", "--loglevel", "INFO", "--concurrency", "2"]),
        Child("beat", [*celery, "beat", "--loglevel", "INFO", "--schedule", str(DEVDATA / "celerybeat-schedule")]),
    ]
    announce = f"Observatory is starting at http://127.0.0.1:{port}/  (Ctrl-C stops everything)"
    return supervise(children, env=os.environ, cwd=str(ROOT), announce=announce)


def manage(args: list[str]) -> int:
    _prepare_environment()
    return subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT).returncode


def browser() -> int:
    """Browser tests drive Debian's chromium through Playwright; install it when missing."""
    if CHROMIUM.exists():
        return 0
    apt = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium"]
    if os.geteuid() == 0 and shutil.which("apt-get"):
        prefix: list[str] = []
    elif shutil.which("sudo") and shutil.which("apt-get") and subprocess.run(["sudo", "-n", "true"]).returncode == 0:
        prefix = ["sudo", "-n"]
    else:
        print(
            f"{CHROMIUM} is missing and cannot be installed here: browser tests will be skipped. "
            "Install Debian's chromium package (apt-get install chromium) to run them.",
            file=sys.stderr,
        )
        return 0
    print("Installing Debian's chromium for the browser tests...", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run([*prefix, "apt-get", "update", "-q"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run([*prefix, *apt], check=True, env=env, stdout=subprocess.DEVNULL)
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m observatory.devstack")
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run")
    run_parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    commands.add_parser("manage").add_argument("args", nargs=argparse.REMAINDER)
    commands.add_parser("browser")
    options = parser.parse_args(argv)
    if options.command == "run":
        return run(options.port)
    if options.command == "manage":
        return manage(options.args)
    return browser()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
