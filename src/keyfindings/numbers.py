"""Numbers in text, in a canonical form, so a finding's numbers can be checked against the abstract.

"1,024" = "1024", "12.5 %" = "12.5%", "0.50" = "0.5", "−3" = "-3", ".05" = "0.05"; numbers written
as words in the abstract ("One thousand ninety-nine women") count as the abstract's numbers too,
so a model that writes them as digits is not accused of inventing them.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation, localcontext

_CITATION = re.compile(r"\[\s*S?\d+(?:\s*[,;–-]\s*S?\d+)*\s*\]")
_NUMBER = re.compile(
    r"(?:(?<=^)|(?<=[\s(\[=:;,<>≤≥~/]))-(?=\d|\.\d)"  # a leading minus sign (not a range dash)
    r"|(?<![\w.,])(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
)
_UNITS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
_WORD_RUN = re.compile(
    r"\b(?:(?:" + "|".join(list(_UNITS) + list(_SCALES)) + r")(?:[\s-]+(?:and[\s-]+)?|\b))+",
    re.I,
)


def canonical(raw: str) -> str | None:
    """Canonical string for one numeric literal, or None if it is not a number."""
    digits = raw.replace(",", "")
    # Enough precision for any literal: the default 28 digits raise on a 29-digit integer.
    with localcontext() as context:
        context.prec = max(28, len(digits) + 2)
        try:
            value = Decimal(digits)
        except InvalidOperation:
            return None
        if value == value.to_integral_value():
            return str(value.quantize(Decimal(1)))
        return format(value.normalize(), "f")


def extract_numbers(text: str) -> list[str]:
    """Canonical numbers in text, in order; citation markers like "[S3]" are not numbers."""
    text = _CITATION.sub(" ", text).replace("\u2212", "-")
    found: list[str] = []
    sign = ""
    for match in _NUMBER.finditer(text):
        token = match.group(0)
        if token == "-":
            sign = "-"
            continue
        value = canonical(sign + token)
        sign = ""
        if value is not None:
            found.append(value)
    return found


# Longer runs are not one number ("one hundred one hundred …" would grow without bound).
_MAX_NUMBER_WORDS = 12
# Spelled-out numbers a finding must be able to point to: small ones ("two groups", "one of the")
# are too often idiom to check.
MIN_CHECKED_WORD_NUMBER = 10


def _words_value(words: list[str]) -> int | None:
    if len(words) > _MAX_NUMBER_WORDS:
        return None
    total, current, seen = 0, 0, False
    for word in words:
        if word in _UNITS:
            current += _UNITS[word]
            seen = True
        elif word in _SCALES:
            current = max(current, 1) * _SCALES[word]
            if _SCALES[word] >= 1000:
                total, current = total + current, 0
            seen = True
    return total + current if seen else None


def word_numbers(text: str) -> list[str]:
    """Numbers spelled out in words ("one thousand ninety-nine" -> "1099")."""
    out: list[str] = []
    for match in _WORD_RUN.finditer(text):
        words = [w for w in re.split(r"[\s-]+", match.group(0).lower()) if w and w != "and"]
        value = _words_value(words)
        if value is not None:
            out.append(str(value))
    return out


def number_set(text: str) -> frozenset[str]:
    """Every number the text states, as digits or words, canonicalised (signless too)."""
    values = set(extract_numbers(text)) | set(word_numbers(text))
    return frozenset(values | {v.lstrip("-") for v in values})


def unsupported_numbers(claim: str, source_numbers: frozenset[str]) -> list[str]:
    """Numbers in ``claim`` that the source does not contain (duplicates removed, order kept);
    spelled-out ones count from ``MIN_CHECKED_WORD_NUMBER`` up ("Nine thousand seven hundred")."""
    missing: list[str] = []
    spelled = [v for v in word_numbers(claim) if int(v) >= MIN_CHECKED_WORD_NUMBER]
    for value in [*extract_numbers(claim), *spelled]:
        if value not in source_numbers and value not in missing:
            missing.append(value)
    return missing
