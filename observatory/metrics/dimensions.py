"""The dimensions rollups are grouped by, and which groupings are stored.

A grouping is a bit mask over DIMENSIONS in the order PostgreSQL's GROUPING() uses (the first
dimension is the highest bit), so the job can store `ALL ^ GROUPING(...)` straight from a
GROUP BY GROUPING SETS query.
"""

from __future__ import annotations

from collections.abc import Iterable

DIMENSIONS: tuple[str, ...] = (
    "model",
    "provider",
    "feature",
    "environment",
    "prompt_name",
    "prompt_version",
    "status",
    "finish_reason",
)
ALL = (1 << len(DIMENSIONS)) - 1
TOTAL = 0


def mask_of(dimensions: Iterable[str]) -> int:
    mask = 0
    for name in dimensions:
        mask |= 1 << (len(DIMENSIONS) - 1 - DIMENSIONS.index(name))
    return mask


def dimensions_of(mask: int) -> tuple[str, ...]:
    return tuple(name for name in DIMENSIONS if mask & mask_of([name]))


# Hour and day rows are stored for each of these groupings. Single-dimension rows make the
# usual panels (by model, by feature, ...) read one row per point; the full grouping answers
# every other combination by merging. A prompt version means nothing without its name.
STORED_GROUPINGS: tuple[tuple[str, ...], ...] = (
    DIMENSIONS,
    ("model",),
    ("provider",),
    ("feature",),
    ("environment",),
    ("prompt_name", "prompt_version"),
    ("status",),
    ("finish_reason",),
    (),
)
STORED_MASKS: tuple[int, ...] = tuple(mask_of(grouping) for grouping in STORED_GROUPINGS)


def stored_mask_for(needed: Iterable[str], *, available: Iterable[int] = STORED_MASKS) -> int:
    """The stored grouping with the fewest dimensions that still contains `needed`: its rows
    are the fewest to read and merge."""
    wanted = mask_of(needed)
    candidates = [mask for mask in available if mask & wanted == wanted]
    return min(candidates, key=lambda mask: bin(mask).count("1"))
