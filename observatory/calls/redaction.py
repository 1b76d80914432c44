"""Masking of personal data and secrets in prompt and completion content, before it is written.

Each finding is replaced by a typed placeholder ([EMAIL], [PHONE], [CARD], [IBAN],
[API_KEY], [TOKEN]) so a reader still sees that something was there. Card numbers must pass
the Luhn check and IBANs the mod-97 check, so ordinary numbers and codes survive.
"""

from __future__ import annotations

import re
from typing import Any

# One alternation scanned once per string: at each position the first alternative that matches
# wins, so bearer tokens and JWTs come before API keys (a JWT would otherwise be cut in pieces).
_FINDINGS = re.compile(
    r"(?P<bearer>\b(?P<bearer_word>(?i:bearer|token))(?P<bearer_sep>\s+|[=:]\s*)[A-Za-z0-9._~+/=-]{16,})"
    r"|(?P<jwt>\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})"
    r"|(?P<api_key>\b(?:"
    r"sk-(?:proj-|ant-|obs-)?[A-Za-z0-9_-]{16,}"  # OpenAI, Anthropic, Observatory
    r"|pk-obs-[0-9a-f]{16,}"
    r"|(?:AKIA|ASIA)[0-9A-Z]{16}"  # AWS access key id
    r"|AIza[0-9A-Za-z_-]{35}"  # Google
    r"|gh[pousr]_[A-Za-z0-9]{36,}"  # GitHub
    r"|github_pat_[A-Za-z0-9_]{40,}"
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"  # Slack
    r"|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}"  # Stripe
    r"|hf_[A-Za-z0-9]{30,}"  # Hugging Face
    r"))"
    r"|(?P<email>(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})"
    r"|(?P<iban>\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b)"
    r"|(?P<card>(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-]))"
    r"|(?P<phone>(?<![\w+])(?:"
    r"\+\d{1,3}[\s.-]?(?:\(\d{1,4}\)[\s.-]?)?\d{1,4}(?:[\s.-]?\d{2,4}){1,5}"  # +44 20 7946 0958
    r"|\(\d{2,4}\)[\s.-]?\d{3,4}[\s.-]?\d{3,4}"  # (415) 555-0132
    r"|\d{3}[\s.-]\d{3}[\s.-]\d{4}"  # 415-555-0132
    r")(?!\w))"
)


def _luhn_ok(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _iban_ok(candidate: str) -> bool:
    compact = candidate.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    try:
        return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1
    except ValueError:
        return False


def _replace(match: re.Match[str]) -> str:
    kind, found = match.lastgroup, match.group(0)
    if kind == "bearer":
        return f"{match.group('bearer_word')}{match.group('bearer_sep')}[TOKEN]"
    if kind == "card":
        digits = re.sub(r"\D", "", found)
        return "[CARD]" if 13 <= len(digits) <= 19 and _luhn_ok(digits) else found
    if kind == "iban":
        return "[IBAN]" if _iban_ok(found) else found
    if kind == "phone":
        return "[PHONE]" if 7 <= sum(char.isdigit() for char in found) <= 15 else found
    return {"jwt": "[TOKEN]", "api_key": "[API_KEY]", "email": "[EMAIL]"}[kind]


# Every finding contains one of these, and most prose contains none: checking for them with
# plain substring tests first keeps masking cheap on the ingest path.
_UNDERSCORED_TRIGGERS = ("sk_", "rk_", "pk_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "hf_")
# Every card number, IBAN and phone number has two digits in a row, or (a card written with a
# space or dash between each digit) two digits one separator apart.
_TWO_DIGITS = re.compile(r"\d[ -]?\d")
# The same test for ASCII text, where the only digits are 0-9: a plain character class lets the
# regular expression engine skip ahead instead of looking each character's category up (a
# third faster on typical prompts, and most text ingested is ASCII).
_ASCII_TWO_DIGITS = re.compile(r"[0-9][ -]?[0-9]")


def may_hold_a_finding(text: str) -> bool:
    """False when `text` certainly holds nothing to mask. Also sound on the JSON text of a whole
    value: JSON escapes only quotes, backslashes and control characters, none of which is part
    of a trigger, so a string holding one still holds it once encoded."""
    if "@" in text or "eyJ" in text or "AKIA" in text or "ASIA" in text or "AIza" in text or "xox" in text:
        return True
    # The other key prefixes are told by their separator first: most text has neither.
    if "k-" in text and ("sk-" in text or "pk-obs-" in text):
        return True
    if "_" in text:
        for trigger in _UNDERSCORED_TRIGGERS:
            if trigger in text:
                return True
    if (_ASCII_TWO_DIGITS if text.isascii() else _TWO_DIGITS).search(text):
        return True
    lowered = text.lower()
    return "bearer" in lowered or "token" in lowered


def mask_text(text: str) -> str:
    if len(text) < 6 or not may_hold_a_finding(text):  # "a@b.io" is the shortest finding
        return text
    return _FINDINGS.sub(_replace, text)


def mask_value(value: Any) -> Any:
    """Mask every string inside a JSON-like value (keys included: they can carry data too)."""
    if isinstance(value, str):
        return mask_text(value)
    # Strings, the common case, are masked in place rather than through another call.
    if isinstance(value, dict):
        return {mask_text(k) if isinstance(k, str) else k: mask_text(v) if isinstance(v, str) else mask_value(v)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_text(item) if isinstance(item, str) else mask_value(item) for item in value]
    return value
