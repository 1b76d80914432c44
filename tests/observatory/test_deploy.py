"""What production runs: docker-compose.yml, the image's build steps, granian's settings,
`check --deploy`, and the launcher's own checks. The processes themselves are exercised by
tests/system/test_production_topology.py."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from observatory.deploy.__main__ import ROLES
from observatory.deploy.sizing import available_cpus, default_web_threads, default_web_workers
from tests.observatory.test_settings import GOOD_KEY, assert_one_sentence, manage

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
APP_SERVICES = ("migrate", "web", "worker", "beat")


def run(argv: list[str], *, env: dict[str, str], cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def compose_command() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


requires_compose = pytest.mark.skipif(
    compose_command() is None,
    reason="neither docker-compose nor the docker compose plugin is installed (apt-get install docker-compose)",
)


def compose_config(**env: str) -> subprocess.CompletedProcess:
    environ = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **env}
    return run(
        [*compose_command(), "--env-file", ".env.example", "-f", "docker-compose.yml", "config", "-q"], env=environ
    )


@requires_compose
def test_compose_file_is_valid_with_the_documented_env_example():
    result = compose_config(SECRET_KEY=GOOD_KEY, POSTGRES_PASSWORD="0123456789abcdef")
    assert result.returncode == 0, result.stderr


@requires_compose
def test_compose_refuses_to_start_without_the_required_secrets():
    result = compose_config(POSTGRES_PASSWORD="0123456789abcdef")
    assert result.returncode != 0
    assert "set SECRET_KEY in .env" in result.stderr


def test_every_compose_service_has_a_healthcheck_but_the_one_shot_migrate():
    services = COMPOSE["services"]
    assert set(services) == {"postgres", "redis", "mailpit", *APP_SERVICES}
    for name, service in services.items():
        if name == "migrate":
            assert service["healthcheck"] == {"disable": True}
            assert service["restart"] == "no"
        else:
            assert service["healthcheck"]["test"][0] == "CMD", name


def test_web_worker_and_beat_share_one_image_and_start_after_migrations():
    services = COMPOSE["services"]
    images = {(services[name]["image"], services[name]["build"]["dockerfile"]) for name in APP_SERVICES}
    assert images == {("observatory:${OBSERVATORY_IMAGE_TAG:-latest}", "observatory/deploy/Dockerfile")}
    for name in ("web", "worker", "beat"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert services[name]["command"] == ["python", "-m", "observatory.deploy", name]
        assert services[name]["healthcheck"]["test"][-2:] == ["healthcheck", name]
    assert services["migrate"]["command"][-1] == "migrate"
    assert set(APP_SERVICES) == set(ROLES)
    assert services["postgres"]["image"].startswith("postgres:16")
    assert "pgdata:/var/lib/postgresql/data" in services["postgres"]["volumes"]


def test_every_app_setting_in_compose_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    undocumented = [name for name in COMPOSE["x-app"]["environment"] if f"`{name}`" not in readme]
    assert undocumented == []


def test_the_image_runs_as_a_non_root_user_and_collects_static_files():
    dockerfile = (ROOT / "observatory/deploy/Dockerfile").read_text()
    assert re.search(r"^USER observatory$", dockerfile, re.MULTILINE)
    assert "collectstatic --noinput" in dockerfile
    ignore = (ROOT / "observatory/deploy/Dockerfile.dockerignore").read_text().splitlines()
    assert ignore[ignore.index("*")] == "*" and "!observatory/" in ignore


def test_the_image_build_step_collects_static_files_from_the_build_context(tmp_path):
    """The Dockerfile's collectstatic, run on a copy of exactly what the image holds."""
    dockerfile = (ROOT / "observatory/deploy/Dockerfile").read_text()
    secret_key = re.search(r"SECRET_KEY=(\S+) \\", dockerfile).group(1)
    database_url = re.search(r"DATABASE_URL=(\S+) \\", dockerfile).group(1)
    for name in ("manage.py", "requirements.txt"):
        shutil.copy(ROOT / name, tmp_path / name)
    for name in ("observatory", "ingest", "dashboards"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    environ = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "STATIC_ROOT")}
    environ.update(SECRET_KEY=secret_key, DATABASE_URL=database_url)
    result = run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"], env=environ, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "staticfiles" / "staticfiles.json").exists()


@pytest.mark.parametrize("behind_proxy", ["0", "1"])
def test_production_settings_pass_check_deploy_without_warnings(behind_proxy):
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        SECRET_KEY=GOOD_KEY,
        ALLOWED_HOSTS="observatory.example.com",
        SECURE_SSL_REDIRECT=None,
        BEHIND_PROXY=behind_proxy,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_django_reads_request_bodies_up_to_the_ingest_limit():
    code = "from django.conf import settings as s; print(s.DATA_UPLOAD_MAX_MEMORY_SIZE, s.INGEST_MAX_BODY_BYTES)"
    result = manage("shell", "-c", code, SECRET_KEY=GOOD_KEY, INGEST_MAX_BODY_BYTES="1048576")
    assert result.stdout.split()[-2:] == ["1048576", "1048576"], result.stderr


def test_a_redis_visibility_timeout_shorter_than_a_task_is_refused():
    result = manage(
        "check",
        SECRET_KEY=GOOD_KEY,
        CELERY_BROKER_URL="redis://127.0.0.1:6379/0",
        CELERY_BROKER_VISIBILITY_TIMEOUT="300",
    )
    assert_one_sentence(result, "CELERY_BROKER_VISIBILITY_TIMEOUT=300 must be longer than CELERY_TASK_TIME_LIMIT=300")


@pytest.mark.parametrize("visibility, mutex", [("3600", "300"), ("10", "5")])
def test_the_redis_sweep_lock_never_outlives_half_the_visibility_timeout(visibility, mutex):
    """A worker killed while it holds the sweep's lock must not delay the return of its
    messages much beyond the visibility timeout."""
    code = "from django.conf import settings as s; print(s.CELERY_BROKER_TRANSPORT_OPTIONS['unacked_mutex_expire'])"
    result = manage("shell", "-c", code, SECRET_KEY=GOOD_KEY, CELERY_BROKER_URL="redis://127.0.0.1:6379/0",
                    CELERY_BROKER_VISIBILITY_TIMEOUT=visibility, CELERY_TASK_TIME_LIMIT="5",
                    CELERY_TASK_SOFT_TIME_LIMIT="4")
    assert result.stdout.split()[-1:] == [mutex], result.stderr


def test_a_soft_time_limit_not_below_the_hard_one_is_refused():
    result = manage("check", SECRET_KEY=GOOD_KEY, CELERY_TASK_SOFT_TIME_LIMIT="300")
    assert_one_sentence(result, "CELERY_TASK_SOFT_TIME_LIMIT=300 must be smaller than CELERY_TASK_TIME_LIMIT=300")


def test_available_cpus_follow_a_cgroup_quota(tmp_path):
    cpu_max = tmp_path / "cpu.max"
    affinity = len(os.sched_getaffinity(0))
    assert available_cpus(cgroup_cpu_max=tmp_path / "missing") == affinity
    cpu_max.write_text("max 100000\n")
    assert available_cpus(cgroup_cpu_max=cpu_max) == affinity
    cpu_max.write_text("50000 100000\n")  # docker run --cpus 0.5
    assert available_cpus(cgroup_cpu_max=cpu_max) == 1


def test_web_workers_are_one_per_cpu_at_least_two_within_a_connection_budget():
    assert [default_web_workers(cpus) for cpus in (1, 2, 4, 64)] == [2, 2, 4, 8]


def test_web_threads_fill_the_connection_budget_up_to_sixteen():
    workers = [1, 2, 4, 8, 64, 256]
    assert [default_web_threads(count) for count in workers] == [16, 16, 16, 8, 1, 1]
    assert all(count * default_web_threads(count) <= 64 for count in workers if count <= 64)


def launcher(*args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("WEB_", "GRANIAN_", "BEAT_"))}
    environ.update(env)
    return run([sys.executable, "-m", "observatory.deploy", *args], env=environ)


# What granian's own command line makes of the launcher's options: it parses them (names,
# ranges) exactly as `python -m granian` would, and the server it would start is recorded.
GRANIAN_PARSE = """
import json, sys
from pathlib import Path
import granian.cli
from observatory.deploy.granian_conf import granian_argv, web_settings

class Recorded:
    def __init__(self, target, **options):
        http1 = options.pop("http1_settings")
        options.pop("http2_settings")
        shown = {key: value for key, value in options.items() if isinstance(value, (int, str, type(None)))}
        print(json.dumps({"target": target, "header_read_timeout": http1.header_read_timeout, **shown}, default=str))

    def serve(self):
        pass

granian.cli.Server = Recorded
config = Path(sys.argv[1])
config.write_text("{}")
granian.cli.cli.main(granian_argv(web_settings(), log_config=config), standalone_mode=False)
"""


def granian_options(tmp_path: Path, **env: str) -> dict:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("WEB_", "GRANIAN_"))}
    shown = run([sys.executable, "-c", GRANIAN_PARSE, str(tmp_path / "logging.json")], env={**environ, **env})
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)


def test_granian_accepts_its_configuration_with_overrides_from_the_environment(tmp_path):
    options = granian_options(
        tmp_path, WEB_BIND="127.0.0.1:9000", WEB_WORKERS="7", WEB_THREADS="3", WEB_GRACEFUL_TIMEOUT="45",
        WEB_HEADER_READ_TIMEOUT="12", WEB_WORKERS_LIFETIME="3600",
    )
    assert options["target"] == "observatory.wsgi:web_application" and options["factory"] is True
    assert {key: options[key] for key in ("address", "port", "workers", "blocking_threads", "workers_kill_timeout",
                                          "header_read_timeout", "workers_lifetime", "workers_max_rss")} == {
        "address": "127.0.0.1", "port": 9000, "workers": 7, "blocking_threads": 3, "workers_kill_timeout": 45,
        "header_read_timeout": 12_000, "workers_lifetime": 3600, "workers_max_rss": 512,
    }
    assert options["interface"] == "wsgi" and options["respawn_failed_workers"] is True
    assert options["log_access"] is False


def test_granian_defaults(tmp_path):
    options = granian_options(tmp_path)
    assert (options["address"], options["port"]) == ("0.0.0.0", 8000)
    assert options["workers"] == default_web_workers(available_cpus())
    assert options["blocking_threads"] == default_web_threads(options["workers"])
    assert options["backlog"] == 1024
    assert options["workers_kill_timeout"] == 30
    assert options["header_read_timeout"] == 30_000
    assert options["workers_lifetime"] is None  # never: recycling is by memory (workers_max_rss)


def test_the_web_log_config_is_observatory_logs_for_granian_loggers():
    from observatory.deploy.granian_conf import log_config_file, web_settings

    path = log_config_file(web_settings())
    try:
        config = json.loads(path.read_text())
    finally:
        path.unlink()
    assert config["loggers"]["_granian"]["handlers"] == ["console"]
    assert config["loggers"]["granian.access"] == {"handlers": [], "propagate": False}


@pytest.mark.parametrize(("name", "value", "sentence"), [
    ("WEB_WORKERS", "lots", "WEB_WORKERS='lots' is not a whole number."),
    ("WEB_BIND", "8000", "WEB_BIND='8000' is not host:port (for example 0.0.0.0:9808)."),
    ("WEB_HEADER_READ_TIMEOUT", "120", "WEB_HEADER_READ_TIMEOUT=120 is too large: the maximum is 60."),
    ("WEB_WORKERS_LIFETIME", "30", "WEB_WORKERS_LIFETIME=30 is too small: 0 (never) or at least 60 seconds."),
])
def test_a_bad_web_setting_stops_the_web_role_with_one_sentence(name, value, sentence):
    result = launcher("web", **{name: value})
    assert result.returncode == 2
    assert result.stderr.strip() == f"Configuration error: {sentence}"


def test_beat_healthcheck_needs_a_recent_heartbeat(tmp_path):
    schedule = tmp_path / "schedule"
    heartbeat = tmp_path / "schedule.heartbeat"
    missing = launcher("healthcheck", "beat", BEAT_SCHEDULE_FILE=str(schedule))
    assert missing.returncode == 1 and "no heartbeat" in missing.stderr
    heartbeat.touch()
    assert launcher("healthcheck", "beat", BEAT_SCHEDULE_FILE=str(schedule)).returncode == 0
    an_hour_ago = time.time() - 3600
    os.utime(heartbeat, (an_hour_ago, an_hour_ago))
    stale = launcher("healthcheck", "beat", BEAT_SCHEDULE_FILE=str(schedule))
    assert stale.returncode == 1 and "last heartbeat" in stale.stderr


def test_web_healthcheck_fails_when_nothing_answers():
    from tests.system.topology import free_port

    result = launcher("healthcheck", "web", WEB_BIND=f"127.0.0.1:{free_port()}")
    assert result.returncode == 1
    assert "/healthz did not answer" in result.stderr
