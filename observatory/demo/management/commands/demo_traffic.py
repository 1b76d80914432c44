"""python manage.py demo_traffic --project SLUG --calls N --days D"""

from __future__ import annotations

import json
import os
import time

from django.core.management.base import BaseCommand, CommandError

from observatory.demo.traffic import DemoStats, demo_traffic_generate
from observatory.tenancy.models import Project


class Command(BaseCommand):
    help = "Write realistic demo calls into a project through the ingest write path."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--project", required=True, help="Project slug.")
        parser.add_argument("--calls", type=int, default=50_000)
        parser.add_argument("--days", type=int, default=14)
        parser.add_argument("--seed", type=int, default=None, help="Make the data reproducible.")
        parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                            help="Processes generating in parallel (default: 2, or 1 on a single CPU).")
        parser.add_argument("--content-rate", type=float, default=None,
                            help="Share of traces that carry prompt/completion text (default: all up to "
                                 "200,000 calls, 5%% above).")

    def handle(self, *args, project: str, calls: int, days: int, seed: int | None, content_rate: float | None,
               workers: int, **options) -> None:
        target = Project.objects.filter(slug=project).first()
        if target is None:
            raise CommandError(f"No project with slug {project!r}: create it with `manage.py bootstrap`.")
        if calls < 1:
            raise CommandError("--calls must be at least 1.")
        if not 1 <= days <= 3650:
            raise CommandError("--days must be between 1 and 3650.")
        if not 1 <= workers <= 32:
            raise CommandError("--workers must be between 1 and 32.")
        if content_rate is not None and not 0 <= content_rate <= 1:
            raise CommandError("--content-rate must be between 0 and 1.")
        started = time.monotonic()
        last_report = [started]

        def progress(stats: DemoStats) -> None:
            if time.monotonic() - last_report[0] >= 5:
                last_report[0] = time.monotonic()
                rate = stats.calls / (last_report[0] - started)
                self.stderr.write(f"  about {stats.calls:,} calls written ({rate:,.0f}/s)")

        stats = demo_traffic_generate(
            project=target, calls=calls, days=days, seed=seed, content_rate=content_rate, workers=workers,
            progress=progress,
        )
        elapsed = time.monotonic() - started
        self.stdout.write(json.dumps({
            "project": target.slug,
            "calls": stats.calls,
            "traces": stats.traces,
            "seconds": round(elapsed, 1),
            "calls_per_second": round(stats.calls / elapsed) if elapsed else None,
        }))
