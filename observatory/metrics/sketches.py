"""DDSketch percentiles, stored compactly and merged with numpy.

Values map to bin keys with the `ddsketch` package's LogarithmicMapping (1 % relative
accuracy), and quantiles follow its `get_quantile_value`: the rank is q * (count - 1) and
the answer is the value of the first bin whose running count exceeds it.

Why not store serialised DDSketch objects: the panel "P50/P99 by model per hour over 30 days"
merges thousands of sketches, and deserialising and merging them one by one in Python takes
seconds. Instead each rollup row keeps its bins as a sorted bigint array of
(key << 32) | count, which PostgreSQL can build and merge in SQL (unnest, group by key) when
the job rolls minutes into hours, and which a read fetches as raw bytes (array_send) and
decodes for thousands of rows at once with one numpy call. Quantiles of any number of groups
are then one sort, one cumulative sum and one searchsorted.

The key of a value is computed in SQL with the mapping's own constants, in the same floating
point operations as LogarithmicMapping.key (ln(v) / ln(2) * multiplier, rounded up), so the
database and the package agree bin for bin (tested).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ddsketch.mapping import LogarithmicMapping

RELATIVE_ACCURACY = 0.01
MAPPING = LogarithmicMapping(RELATIVE_ACCURACY)
# DDSketch keeps values too small to map (zero, in practice) in a separate count that ranks
# below every bin; a key below any real one does the same in a single sorted array.
ZERO_KEY = -(2**31)
COUNT_BITS = 32
COUNT_MASK = (1 << COUNT_BITS) - 1
# One element of a bigint[] in PostgreSQL's binary array format: its length, then the value.
_ELEMENT = np.dtype([("length", ">i4"), ("value", ">i8")])
# array_send() of a one-dimensional array: ndim, flags, element type, length, lower bound.
ARRAY_HEADER_BYTES = 20


def sql_key(value: str) -> str:
    """SQL for the bin key of the float8 expression `value` (NULL stays NULL)."""
    return (
        f"CASE WHEN ({value}) > {MAPPING.min_possible!r} "
        f"THEN ceil(ln(({value})::float8) / ln(2::float8) * {MAPPING._multiplier!r})::int8 "
        f"WHEN ({value}) IS NOT NULL THEN {ZERO_KEY} END"
    )


def sql_bins_payload(column: str) -> str:
    """SQL turning a bins array into bytes a read can decode without per-element work."""
    return f"substr(array_send({column}), {ARRAY_HEADER_BYTES + 1})"


# Quantiles every hour and day row keeps precomputed (as bin keys), in this order.
STORED_QUANTILES = (0.5, 0.9, 0.95, 0.99)


def sql_quantile_keys(array: str) -> str:
    """SQL for the keys at STORED_QUANTILES of one bins array (NULL stays NULL), by the same
    rank rule as `quantiles`."""
    picks = ", ".join(
        f"min(e >> {COUNT_BITS}) FILTER (WHERE running > {q!r} * (total - 1))" for q in STORED_QUANTILES
    )
    return (
        f"CASE WHEN {array} IS NOT NULL THEN (SELECT ARRAY[{picks}]::int4[] FROM ("
        f"SELECT e, sum(e & {COUNT_MASK}) OVER (ORDER BY e) AS running, sum(e & {COUNT_MASK}) OVER () AS total "
        f"FROM unnest({array}) AS e) AS bins) END"
    )


def key_value(key: int) -> float:
    return 0.0 if key == ZERO_KEY else MAPPING.value(key)


def bins_decode(payload: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Keys and counts from the bytes `sql_bins_payload` produced (any number of arrays
    concatenated)."""
    values = np.frombuffer(payload, dtype=_ELEMENT)["value"].astype(np.int64)
    return values >> COUNT_BITS, values & COUNT_MASK


def quantiles(payloads: Sequence[bytes | None], qs: Sequence[float],
              presorted: Sequence[bool] | None = None) -> list[list[float | None]]:
    """For each group (its bins as one payload), the values at quantiles `qs`; None for a
    group without values. `presorted` says which payloads are already sorted by key (one
    stored row each): only the others are sorted."""
    lengths = np.array([len(payload or b"") // _ELEMENT.itemsize for payload in payloads], dtype=np.int64)
    keys, counts = bins_decode(b"".join(payload or b"" for payload in payloads))
    offsets = np.concatenate(([0], np.cumsum(lengths)))
    unsorted = [g for g in range(len(payloads)) if lengths[g] > 1 and not (presorted and presorted[g])]
    if len(unsorted) > 64:
        groups = np.repeat(np.arange(len(payloads), dtype=np.int64), lengths)
        order = np.argsort((groups << 32) | (keys - ZERO_KEY), kind="stable")
        keys, counts = keys[order], counts[order]
    else:
        for g in unsorted:
            lo, hi = offsets[g], offsets[g + 1]
            order = np.argsort(keys[lo:hi], kind="stable")
            keys[lo:hi], counts[lo:hi] = keys[lo:hi][order], counts[lo:hi][order]
    running = np.cumsum(counts)
    cumulative = np.concatenate(([0], running))
    before = cumulative[offsets[:-1]]
    totals = cumulative[offsets[1:]] - before
    answers: list[list[float | None]] = [[None] * len(qs) for _ in payloads]
    present = np.flatnonzero(totals)
    if not len(present):
        return answers
    for column, q in enumerate(qs):
        rank = before[present] + q * (totals[present] - 1)
        # The first bin of the group whose running count exceeds the rank, as DDSketch does.
        found = keys[np.searchsorted(running, rank, side="right")]
        # Thousands of groups share a few hundred keys: map each distinct key once.
        distinct, where = np.unique(found, return_inverse=True)
        values = np.array([key_value(key) for key in distinct.tolist()])[where]
        for group, value in zip(present.tolist(), values.tolist()):
            answers[group][column] = value
    return answers
