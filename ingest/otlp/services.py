"""Ingest an OTLP export request: map every span, store the good ones, report the rest."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction

from ingest.limits import IngestWindow
from ingest.otlp.attributes import attributes_dict
from ingest.otlp.decode import hex_id
from ingest.otlp.spans import span_map
from observatory.calls.services import calls_write
from observatory.calls.updates import traces_annotate
from observatory.tenancy.models import Project

# The partial-success message names this many problems, then counts the rest.
MAX_REPORTED_PROBLEMS = 20


@dataclass
class OtlpReport:
    spans: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        shown = self.problems[:MAX_REPORTED_PROBLEMS]
        hidden = len(self.problems) - len(shown)
        return "; ".join(shown) + (f"; and {hidden} more" if hidden > 0 else "")


def otlp_ingest(*, project: Project, request) -> OtlpReport:
    """Store every span that can be stored truthfully, durably and once; rejected spans and
    warnings are named in the report (OTLP's partial success)."""
    report = OtlpReport()
    window = IngestWindow.now()
    records, annotations = [], []
    for resource_spans in request.resource_spans:
        resource = attributes_dict(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                report.spans += 1
                outcome = span_map(span, resource=resource, scope_name=scope_spans.scope.name, window=window)
                where = f"span {hex_id(span.span_id) or '(no id)'}"
                if outcome.refusal:
                    report.rejected += 1
                    report.problems.append(f"{where} rejected: {outcome.refusal}")
                    continue
                report.problems.extend(f"{where}: {warning}" for warning in outcome.warnings)
                records.append(outcome.record)
                if outcome.annotation is not None:
                    annotations.append(outcome.annotation)
    with transaction.atomic():
        written = calls_write(project=project, records=records)
        traces_annotate(project=project, annotations=annotations)
    report.accepted, report.duplicates = len(written.accepted), len(written.duplicates)
    return report
