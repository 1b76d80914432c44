import pytest

from observatory.calls.redaction import mask_text, mask_value, may_hold_a_finding


@pytest.mark.parametrize(
    "text, expected",
    [
        ("write to jane.doe+news@mail.example.co.uk today", "write to [EMAIL] today"),
        ("call +44 20 7946 0958 or (415) 555-0132", "call [PHONE] or [PHONE]"),
        ("card 4111 1111 1111 1111 exp 12/29", "card [CARD] exp 12/29"),
        ("card 4111-1111-1111-1111", "card [CARD]"),
        ("card 4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 thanks", "card [CARD] thanks"),  # no two digits in a row
        ("IBAN GB82 WEST 1234 5698 7654 32 please", "IBAN [IBAN] please"),
        ("DE89370400440532013000", "[IBAN]"),
        ("use sk-proj-AbCdEfGhIjKlMnOpQrStUvWx123", "use [API_KEY]"),
        ("anthropic sk-ant-api03-abcdefghijklmnopqrstu", "anthropic [API_KEY]"),
        ("aws AKIAIOSFODNN7EXAMPLE", "aws [API_KEY]"),
        ("gh ghp_" + "a" * 36, "gh [API_KEY]"),
        ("Authorization: Bearer abcdef0123456789abcdef", "Authorization: Bearer [TOKEN]"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
         "jwt [TOKEN]"),
    ],
)
def test_findings_become_typed_placeholders(text, expected):
    assert mask_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "order 1234567812345678 is not a card (fails Luhn)",
        "version 2026.11.3 released",
        "GB82 WEST 1234 5698 7654 33 has a bad checksum",
        "the answer is 42, in 2025 we had 3 outages",
        "ticket #48213",
    ],
)
def test_ordinary_text_and_numbers_survive(text):
    assert mask_text(text) == text


@pytest.mark.parametrize(
    "text, expected",
    [
        ("call +44 20 7946 0958", "call [PHONE]"),  # ASCII text: the screen's fast digit test
        ("appelez le +33 1 42 68 53 00, s'il vous plaît", "appelez le [PHONE], s'il vous plaît"),
        ("card \u0664\u0661\u0661\u0661 \u0661\u0661\u0661\u0661 \u0661\u0661\u0661\u0661 \u0661\u0661\u0661\u0661",
         "card [CARD]"),  # Arabic-Indic digits are digits too
    ],
)
def test_digit_findings_pass_the_screen_in_any_script(text, expected):
    assert may_hold_a_finding(text)
    assert mask_text(text) == expected


def test_mask_value_walks_nested_content():
    value = {"messages": [{"role": "user", "content": "I am bob@example.com"}], "n": 3, "ok": True, "none": None}
    assert mask_value(value) == {"messages": [{"role": "user", "content": "I am [EMAIL]"}], "n": 3, "ok": True,
                                 "none": None}


# --- screening a whole value's JSON text before masking it string by string ---------------

_FINDING_TEXTS = ["jane.doe@mail.example.com", "+44 20 7946 0958", "4111 1111 1111 1111", "4-1-1-1-1-1-1-1-1-1-1-1-1-1-1-1",
                  "DE89370400440532013000",
                  "sk-proj-AbCdEfGhIjKlMnOpQrStUvWx123", "Bearer abcdef0123456789abcdef", "AKIAIOSFODNN7EXAMPLE"]


def _json_values():
    from hypothesis import strategies as st

    text = st.one_of(st.text(max_size=30), st.sampled_from(_FINDING_TEXTS),
                     st.builds(lambda a, b, c: f"{a}{b}{c}", st.text(max_size=8), st.sampled_from(_FINDING_TEXTS),
                               st.sampled_from(['"', "\\", "\n", "\t", "\x01", " ", "é"])))
    scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), text)
    return st.recursive(scalars, lambda children: st.one_of(st.lists(children, max_size=4),
                                                             st.dictionaries(text, children, max_size=4)), max_leaves=12)


def test_screened_json_is_what_masking_every_string_gives():
    """A value whose JSON text the screen passes holds no finding: the shortcut never stores
    what masking string by string would have replaced."""
    from hypothesis import given, settings

    from observatory.calls.rows import _masked_json, json_text

    @settings(max_examples=400, deadline=None)
    @given(_json_values())
    def check(value):
        assert _masked_json(value, json_text(value)) == json_text(mask_value(value))

    check()


def test_prompt_completion_and_metadata_screened_together_are_masked_as_each_alone():
    """RowBuilder.json_columns screens the three texts at once: whatever holds a finding, each
    comes out as masking it on its own gives, in every redaction mode."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from observatory.calls.rows import RowBuilder, json_text
    from observatory.tenancy.models import RedactionMode

    def alone(value, mode, *, content):
        if value is None or (not content and not value) or (content and mode == RedactionMode.DROP):
            return None
        return json_text(value) if mode == RedactionMode.STORE else json_text(mask_value(value))

    metadata = st.one_of(st.just({}), st.dictionaries(st.sampled_from(["k", "note"]), _json_values(), max_size=2))

    @settings(max_examples=300, deadline=None)
    @given(_json_values(), _json_values(), metadata, st.sampled_from(list(RedactionMode)))
    def check(prompt, completion, meta, mode):
        builder = RowBuilder.__new__(RowBuilder)
        builder.redaction = mode
        sent, *kept = builder.json_columns(prompt, completion, meta)
        assert sent == (None if prompt is None else json_text(prompt))
        assert kept == [alone(prompt, mode, content=True), alone(completion, mode, content=True),
                        alone(meta, mode, content=False)]

    check()
