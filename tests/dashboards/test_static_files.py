"""plotly.js and our CSS are our own static files, served by whitenoise: no CDN anywhere."""

from __future__ import annotations

from pathlib import Path

from django.contrib.staticfiles import finders
from django.contrib.staticfiles.storage import staticfiles_storage
from django.test import Client

from dashboards.plotly_css import plotly_css
from dashboards.staticfiles import PATH, PlotlyFinder
from tests.dashboards.conftest import logged_in

ROOT = Path(__file__).resolve().parents[2]


def test_the_finder_publishes_the_plotly_bundle_of_the_pinned_package():
    found = finders.find(PATH)
    assert found and found.endswith("plotly/package_data/plotly.min.js")
    assert [path for path, _ in PlotlyFinder().list(None)] == ["plotly.min.js"]
    assert PlotlyFinder().find("vendor/plotly/other.js") == []
    assert finders.find("dashboards/no-such-file.js") is None
    assert PlotlyFinder().check() == []


def test_the_committed_plotly_stylesheet_matches_the_bundle():
    committed = (ROOT / "dashboards/static/vendor/plotly/plotly.css").read_text()
    assert committed == plotly_css(), "rebuild it: .venv/bin/python -m dashboards.plotly_css > " \
                                      "dashboards/static/vendor/plotly/plotly.css"
    assert ".js-plotly-plot .plotly .main-svg {position:absolute;" in committed


def test_whitenoise_serves_the_hashed_bundle_a_page_names(pages_project, owner):
    body = logged_in(owner).get(f"/p/{pages_project.slug}/cost/").content.decode()
    url = staticfiles_storage.url(PATH)
    assert url != f"/static/{PATH}" and url in body  # hashed name, from the manifest
    response = Client().get(url)
    assert response.status_code == 200 and "javascript" in response["Content-Type"]
    assert "immutable" in response["Cache-Control"]
    assert b"plotly.js v" in b"".join(response.streaming_content)[:200]


def test_no_page_loads_anything_from_another_origin(project, owner):
    client = logged_in(owner)
    for page in ("", "traces/", "latency/", "cost/", "quality/", "finance/", "settings/"):
        body = client.get(f"/p/{project.slug}/{page}").content.decode()
        assert "https://" not in body.replace("https://pypi.org", "") and "//cdn" not in body
