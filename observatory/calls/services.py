"""The durable write path shared by every way in: price, redact, then store.

`calls_write` returns only after the transaction that stores the calls, their content, their
traces' running totals and the minutes rollups must recompute has committed, so a caller may
acknowledge what it reports as accepted. A call already stored (same project, trace, span
and start time: a client retry) is reported as a duplicate and changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db import DEFAULT_DB_ALIAS

from observatory.calls.records import CallRecord
from observatory.calls.rows import RowBuilder, clean_text
from observatory.calls.statement_insert import rows_insert
from observatory.prepared import with_live_connection
from observatory.tenancy.models import Project


@dataclass
class WriteResult:
    """Positions in the input sequence: newly stored, or already stored before. `stale` when
    the write's guard failed and nothing was stored."""

    accepted: list[int] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)
    stale: bool = False


def calls_write(
    *, project: Project, records: Sequence[CallRecord], guard: str | None = None, using: str = DEFAULT_DB_ALIAS
) -> WriteResult:
    """Store `records` for `project` durably and exactly once; see the module docstring.

    `guard` (observatory.tenancy.recent_keys.write_guard) is checked in the same transaction:
    when it fails nothing is stored and the result is `stale`."""
    result = WriteResult()
    first_position: dict[tuple, int] = {}
    unique: list[tuple[int, CallRecord]] = []
    for position, record in enumerate(records):
        identity = (clean_text(record.trace_id), clean_text(record.span_id), record.start_time)
        if identity in first_position:
            result.duplicates.append(position)
            continue
        first_position[identity] = position
        unique.append((position, record))
    if not unique:
        return result

    builder = RowBuilder(project)
    rows = [(position, *builder.row(record)) for position, record in unique]
    # Safe to repeat on a new connection: a call already stored is only reported a duplicate.
    inserted = with_live_connection(lambda: rows_insert(rows, guard=guard, using=using), using)
    if inserted is None:
        return WriteResult(stale=True)
    for position, _ in unique:
        (result.accepted if position in inserted else result.duplicates).append(position)
    result.accepted.sort()
    result.duplicates.sort()
    return result


