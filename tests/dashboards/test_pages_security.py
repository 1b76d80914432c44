"""Prompt content is attacker-controlled: it renders inert everywhere, and roles that may not
read prompts never receive it, on any page or in any export. Pages run no inline script or
style, so the Content-Security-Policy can forbid both."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from dashboards.middleware import POLICY
from tests.dashboards.conftest import PAYLOADS, SECRET_COMPLETION, SECRET_PROMPT, logged_in

PAGES = ["", "traces/", "traces/?show=all", "traces/?show=roots", "trace/trace-xss", "trace/trace-ok", "latency/",
         "latency/?by=feature", "cost/", "cost/?by=user_id", "cost/?by=feature", "quality/", "finance/", "settings/",
         "reliability/", "reliability/?range=30d", "budgets/", "alerts/"]
SECRETS = (SECRET_PROMPT, SECRET_COMPLETION, "Zephyr")


class Elements(HTMLParser):
    """Every element the browser would build from a page, with its attributes."""

    def __init__(self, body: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict]] = []
        self.feed(body)

    def handle_starttag(self, tag, attrs) -> None:
        self.elements.append((tag, dict(attrs)))


def fetch(client, project, page: str):
    return client.get(f"/p/{project.slug}/{page}")


def all_exports(client, project, page: str, response) -> list[str]:
    separator = "&" if "?" in page else "?"
    return [fetch(client, project, f"{page}{separator}export={name}").content.decode()
            for name in response.context["tables"]]


@pytest.mark.parametrize("page", PAGES)
def test_payloads_in_every_client_controlled_field_render_inert(pages_project, owner, page):
    response = fetch(logged_in(owner), pages_project, page)
    assert response.status_code == 200
    body = response.content.decode()
    for payload in PAYLOADS:
        assert payload not in body
    for tag, attributes in Elements(body).elements:
        # No event handler and no inline style anywhere (the CSP would refuse the latter).
        assert not [name for name in attributes if name.startswith("on") or name == "style"], (tag, attributes)
        assert tag != "style"
        if tag == "script":  # from our static files, or a JSON island the browser never runs
            assert attributes.get("src", "").startswith("/static/") or attributes.get("type") == "application/json"
        if tag == "img":
            assert attributes["src"].startswith("/static/")


def test_the_hostile_trace_shows_its_payloads_as_text(pages_project, owner):
    body = fetch(logged_in(owner), pages_project, "trace/trace-xss").content.decode()
    assert "&lt;script&gt;alert(&#x27;xss&#x27;)&lt;/script&gt;" in body
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in body


def test_chart_data_cannot_close_its_script_element(pages_project, owner):
    body = fetch(logged_in(owner), pages_project, "latency/").content.decode()
    island = re.search(r'<script id="chart-data" type="application/json">(.*?)</script>', body, re.DOTALL).group(1)
    assert "gpt-4o" in island and "\\u003Cscript\\u003E" in island


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("persona", ["finance", "viewer"])
def test_roles_without_prompt_access_never_receive_prompt_content(request, pages_project, persona, page):
    client = logged_in(request.getfixturevalue(persona))
    response = fetch(client, pages_project, page)
    exports = all_exports(client, pages_project, page, response) if persona == "finance" else []
    for text in [response.content.decode(), *exports]:
        for secret in SECRETS:
            assert secret not in text


def test_engineers_do_see_prompts_and_feedback(pages_project, teammate):
    client = logged_in(teammate)
    trace = fetch(client, pages_project, "trace/trace-ok").content.decode()
    assert SECRET_PROMPT in trace and SECRET_COMPLETION in trace and "Great answer about Zephyr" in trace
    assert "Great answer about Zephyr" in fetch(client, pages_project, "quality/").content.decode()


def test_the_trace_page_says_why_content_is_missing(pages_project, finance):
    body = fetch(logged_in(finance), pages_project, "trace/trace-ok").content.decode()
    assert "hidden for your role (finance)" in body


@pytest.mark.parametrize("path", ["/login/", "/p/support-bot/", "/p/support-bot/trace/trace-xss"])
def test_pages_send_a_content_security_policy(pages_project, owner, path):
    response = logged_in(owner).get(path)
    assert response["Content-Security-Policy"] == POLICY
    assert "script-src 'self'" in POLICY and "unsafe-inline" not in POLICY and "unsafe-eval" not in POLICY
    assert response["X-Frame-Options"] == "DENY"


def test_csv_cells_cannot_become_spreadsheet_formulas(pages_project, owner):
    from observatory.calls.services import calls_write
    from tests.records import record

    calls_write(project=pages_project, records=[record(model="=HYPERLINK(\"http://evil\")", feature="+cmd")])
    csv = fetch(logged_in(owner), pages_project, "cost/?export=by-model").content.decode()
    assert "'=HYPERLINK" in csv and "\n=HYPERLINK" not in csv and ",=HYPERLINK" not in csv
