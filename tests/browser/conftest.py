"""Headless Chromium (Debian's, through Playwright) against a live server with demo data.

Screenshots go to test-artifacts/browser/ (git-ignored) for people to look at.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from observatory.calls.services import calls_write
from observatory.demo.traffic import demo_traffic_generate
from observatory.metrics.services import rollups_compute
from observatory.tenancy.roles import Role
from observatory.tenancy.services import membership_set, organization_get_or_create, project_create
from tests.conftest import PASSWORD, make_user
from tests.records import record

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.browser


def _through_the_app(handler):
    return handler


@pytest.fixture(scope="session")
def live_server(request):
    """pytest-django's live server, with static files served the production way: by
    whitenoise from the collected, hashed files (tests/conftest.py collects them). Its default
    static handler looks files up through the finders, which know no hashed names, and would
    answer 404 before whitenoise is asked."""
    from pytest_django.live_server_helper import LiveServer

    address = request.config.getvalue("liveserver") or os.getenv("DJANGO_LIVE_TEST_SERVER_ADDRESS") or "localhost"
    server = LiveServer(address, start=False)
    server.thread.static_handler = _through_the_app
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def chromium():
    """Chromium for one module's tests. Playwright's sync API keeps an event loop running in
    this thread while it is started, which Django's ORM refuses (DJANGO_ALLOW_ASYNC_UNSAFE
    lets the tests' own ORM calls through). Both end with the module, so the tests that follow
    run in a thread with no event loop and no such setting (`check --deploy` rejects it)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package (make test does when it can) "
                    "or set CHROMIUM_PATH")
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def site(live_server, settings):
    """An organization with a demo project full of traffic (rolled up, as the job would) and an
    engineer and a finance reviewer who can log in."""
    # The live server speaks plain HTTP; production cookies are HTTPS-only.
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False
    organization = organization_get_or_create(name="Acme", slug="acme")
    project = project_create(organization=organization, name="Support bot", slug="support-bot")
    other = project_create(organization=organization, name="Website", slug="website")
    people = {}
    for email, role in (("engineer@acme.test", Role.ENGINEER), ("finance@acme.test", Role.FINANCE)):
        people[role] = make_user(email)
        membership_set(organization=organization, user=people[role], role=role)
    demo_traffic_generate(project=project, calls=1500, days=3, seed=7)
    demo_traffic_generate(project=other, calls=200, days=3, seed=8)
    # Provider failures, timeouts and fallbacks are rare in demo traffic, and how many land in
    # 1,500 calls depends on the hour the test runs; one of each keeps every Reliability chart
    # and table drawn.
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    calls_write(project=project, records=[
        *(record(start_time=an_hour_ago, status="error", http_status=status, error_type=error_type,
                 finish_reason=None, feature="support-chat")
          for status, error_type in ((429, "RateLimitError"), (503, "ServiceUnavailableError"),
                                     (408, "APITimeoutError"))),
        record(start_time=an_hour_ago, provider="anthropic", model="claude-haiku-4-5", finish_reason="stop",
               fallback_from_provider="openai", fallback_from_model="gpt-4o-mini", feature="support-chat"),
    ])
    rollups_compute()
    return {"url": live_server.url, "project": project, "people": people}


class Session:
    """One logged-in browser tab that records console errors and foreign requests."""

    def __init__(self, browser, base_url: str) -> None:
        self.context = browser.new_context(viewport={"width": 1440, "height": 900}, accept_downloads=True)
        self.page = self.context.new_page()
        self.base_url = base_url
        self.errors: list[str] = []
        self.foreign: list[str] = []
        self.page.on("console", lambda message: self.errors.append(f"{self.page.url}: {message.text}")
                     if message.type == "error" else None)
        self.page.on("pageerror", lambda error: self.errors.append(f"{self.page.url}: {error}"))
        self.page.on("request", lambda request: None if request.url.startswith((base_url, "data:", "blob:"))
                     else self.foreign.append(request.url))

    def log_in(self, email: str) -> None:
        self.page.goto(f"{self.base_url}/login/")
        self.page.fill("input[name=username]", email)
        self.page.fill("input[name=password]", PASSWORD)
        self.page.click("button[type=submit]")
        self.page.wait_for_load_state("load")

    def open(self, path: str) -> None:
        self.page.goto(f"{self.base_url}{path}")
        self.settle()

    def settle(self) -> None:
        self.page.wait_for_load_state("load")
        # Charts are drawn on the load event; wait until each has its SVG.
        self.page.wait_for_function("() => Array.from(document.querySelectorAll('[data-chart]'))"
                                    ".every(el => el.querySelector('.main-svg'))")

    def charts(self) -> dict[str, int]:
        """Each chart on the page and how many data points it draws."""
        return self.page.evaluate(
            """() => Object.fromEntries(Array.from(document.querySelectorAll('[data-chart]')).map(el => [
                el.dataset.chart,
                (el.data || []).reduce((n, trace) => n + [...(trace.y || []), ...(trace.x || [])]
                    .filter(v => v !== null && v !== undefined).length, 0)]))"""
        )

    def screenshot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def session_for(chromium, site):
    sessions = []

    def start(role: Role) -> Session:
        session = Session(chromium, site["url"])
        session.log_in(site["people"][role].email)
        sessions.append(session)
        return session

    yield start
    for session in sessions:
        session.close()
