"""The size and depth screen every way in applies to content and metadata (ingest/limits.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest import limits
from ingest.limits import _walk, shape

json_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12)),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(st.text(max_size=6), children, max_size=4)),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(value=json_value, limit=st.integers(min_value=0, max_value=5))
def test_the_screen_in_c_answers_as_the_walk_does(value, limit):
    # A string limit small enough that generated strings cross it.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(limits, "MAX_CONTENT_STRING", 8)
        expected = _walk(value, limit) if isinstance(value, dict | list) else (False, isinstance(value, str) and len(value) > 8)
        assert shape(value, limit) == expected


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_depth_at_the_limit_passes_and_one_more_is_too_deep():
    assert shape(nested(10), 10) == (False, False)
    assert shape(nested(11), 10) == (True, False)
    # Brackets inside strings make the screen fall back to the walk, which is not fooled.
    assert shape([["[[[[[[[[[[[["]], 10) == (False, False)


def test_a_long_string_is_found_however_deep():
    assert shape({"a": [{"b": "x" * (limits.MAX_CONTENT_STRING + 1)}]}, 10) == (False, True)
    assert shape({"a": [{"b": "x" * limits.MAX_CONTENT_STRING}]}, 10) == (False, False)


def test_values_msgspec_cannot_encode_are_walked():
    assert shape([{1.5: "fine"}], 10) == (False, False)
    assert shape([{1.5: ["x" * (limits.MAX_CONTENT_STRING + 1)]}], 10) == (False, True)
