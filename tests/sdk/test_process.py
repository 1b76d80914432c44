"""The client in real processes: configured from the environment, flushed at interpreter
exit, working on both sides of a fork, and installable as a wheel."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from observatory.calls.models import Call

ROOT = Path(__file__).resolve().parents[2]
SDK = ROOT / "sdk" / "python"


def run_python(code: str, *, env: dict[str, str], cwd: Path = ROOT) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture
def app_env(live_server, api_key) -> dict[str, str]:
    """An application's environment: the client finds the server and key there."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("OBSERVATORY_")}
    env.update(
        OBSERVATORY_URL=live_server.url,
        OBSERVATORY_SECRET_KEY=api_key.secret,
        OBSERVATORY_ENVIRONMENT="production",
        PYTHONPATH=str(SDK / "src"),
    )
    return env


def test_events_still_queued_at_exit_are_sent(app_env, project):
    run_python(
        """
        from observatory_sdk import Observatory

        def work():
            # The client is dropped when this returns; only the exit hook sends its events.
            observatory = Observatory(flush_interval=3600)
            for i in range(3):
                observatory.record(name=f"exiting-{i}", model="gpt-4o-mini", input_tokens=10, output_tokens=2)

        work()
        """,
        env=app_env,
    )
    calls = Call.objects.filter(project=project).order_by("name")
    assert [(call.name, call.environment) for call in calls] == [
        ("exiting-0", "production"), ("exiting-1", "production"), ("exiting-2", "production")]


def test_a_forked_child_sends_its_own_events_and_not_its_parents(app_env, project):
    run_python(
        """
        import os
        from observatory_sdk import Observatory

        observatory = Observatory(flush_interval=3600)
        observatory.record(name="parent-before-fork")
        pid = os.fork()
        if pid == 0:
            observatory.record(name="child")
            delivered = observatory.flush(timeout=60)
            stats = observatory.stats()
            os._exit(0 if delivered and stats.accepted == 1 else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, "the child could not send its event"
        observatory.record(name="parent-after-fork")
        assert observatory.flush(timeout=60) and observatory.stats().accepted == 2, observatory.stats()
        """,
        env=app_env,
    )
    assert sorted(Call.objects.filter(project=project).values_list("name", flat=True)) == [
        "child", "parent-after-fork", "parent-before-fork"]


def test_the_package_builds_as_a_wheel_and_imports_from_it(tmp_path):
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    # Built from a copy: setuptools leaves build/ and egg-info/ next to the sources.
    leftovers = shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    source = shutil.copytree(SDK, tmp_path / "source", ignore=leftovers)
    # No build isolation: the pinned setuptools of this environment builds it, offline.
    subprocess.run([*pip, "wheel", str(source), "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist")],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("observatory_sdk-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    expected = {"observatory_sdk/__init__.py", "observatory_sdk/integrations/openai.py", "observatory_sdk/py.typed"}
    assert expected <= names

    target = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env["PYTHONPATH"] = str(target)
    result = run_python(
        "import observatory_sdk; print(observatory_sdk.__file__, observatory_sdk.__version__)", env=env, cwd=tmp_path
    )
    location, version = result.stdout.split()
    assert Path(location).is_relative_to(target)
    assert version == wheel.name.split("-")[1]
