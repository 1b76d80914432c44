"""plotly.js as one of our static files, taken from the pinned plotly package.

The package ships the exact plotly.js its figure format is written for
(plotly/package_data/plotly.min.js, about 5 MB): too large to commit, and a CDN is not an
option for air-gapped installations. This finder publishes that one file as
`vendor/plotly/plotly.min.js`, so `collectstatic` copies it (hashed and compressed in
production) and whitenoise serves it like any other static file; under `make run` whitenoise
finds it through this finder directly.
"""

from __future__ import annotations

from pathlib import Path

import plotly
from django.contrib.staticfiles.finders import BaseFinder
from django.core.checks import Error
from django.core.files.storage import FileSystemStorage

PREFIX = "vendor/plotly"
FILENAME = "plotly.min.js"
PATH = f"{PREFIX}/{FILENAME}"


class PlotlyFinder(BaseFinder):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.location = Path(plotly.__file__).resolve().parent / "package_data"
        self.storage = FileSystemStorage(location=str(self.location))
        # collectstatic and whitenoise put a storage's files under its `prefix`.
        self.storage.prefix = PREFIX

    def check(self, **kwargs) -> list[Error]:
        if not (self.location / FILENAME).is_file():
            return [Error(f"{self.location / FILENAME} is missing: reinstall the pinned plotly package.",
                          id="dashboards.E001")]
        return []

    def find(self, path: str, find_all: bool = False, **kwargs):
        # `all` is the name Django < 6.1 callers may still use.
        find_all = find_all or kwargs.get("all", False)
        if path != PATH:
            return []  # what Django's finders answer: falsy, and nothing to add to a list of matches
        match = str(self.location / FILENAME)
        return [match] if find_all else match

    def list(self, ignore_patterns):
        yield FILENAME, self.storage
