"""Sentence splitting tuned for biomedical abstracts.

Findings cite sentences by number, so the split must be stable and must not break
"p < 0.05", "95% CI 1.2-3.4", "et al.", "Fig. 2", "vs." or decimals. Structured-abstract labels
("METHODS:") always start a new sentence and are kept as the sentence's ``label``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ABBREVIATIONS = frozenset(
    [
        "al",
        "fig",
        "figs",
        "vs",
        "e.g",
        "i.e",
        "eg",
        "ie",
        "approx",
        "ca",
        "cf",
        "no",
        "nos",
        "vol",
        "pp",
        "dr",
        "mr",
        "mrs",
        "ms",
        "prof",
        "st",
        "resp",
        "incl",
        "min",
        "max",
        "wk",
        "wks",
        "yr",
        "yrs",
        "mo",
        "mos",
        "hr",
        "hrs",
        "sec",
        "mg",
        "kg",
        "ml",
        "dl",
        "mmol",
        "etc",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "ref",
        "refs",
        "eq",
        "eqs",
        "tab",
        "suppl",
        "chap",
        "ed",
        "eds",
        "inc",
        "ltd",
        "co",
        "corp",
        "u.s",
        "u.k",
        "sp",
        "spp",
        "var",
        "subsp",
        "n.s",
        "st.dev",
        "std.dev",
    ]
)
_CAN_END_SENTENCE = frozenset({"al", "etc"})
# An all-caps heading such as "BACKGROUND:" or "MATERIALS AND METHODS:" (2+ letters).
LABEL_RE = re.compile(r"\b([A-Z][A-Z]+(?:[ /&,-]+[A-Z]+){0,4})\s*:\s+")
_LABEL_WORDS = re.compile(
    r"BACKGROUND|INTRODUCTION|CONTEXT|RATIONALE|OBJECTIVE|AIM|PURPOSE|GOAL|HYPOTHES|METHOD|DESIGN|"
    r"SETTING|PATIENT|PARTICIPANT|SUBJECT|INTERVENTION|MEASURE|MATERIAL|OUTCOME|POPULATION|"
    r"SAMPLE|RESULT|FINDING|CONCLUSION|INTERPRETATION|LIMITATION|SIGNIFICANCE|DISCUSSION|"
    r"IMPLICATION|CASE|SUMMARY|PROCEDURE|ANALYSIS|STUDY|DATA|SOURCES|SELECTION|EXTRACTION|"
    r"SYNTHESIS|TRIAL|REGISTRATION|EVIDENCE|PRESENTATION|RELEVANCE|IMPORTANCE|EXPOSURE"
)
# A candidate boundary: terminal punctuation (Latin, Arabic "؟" and "۔"), optional closing
# quote/bracket, then whitespace; or a CJK full stop, which needs no space after it.
_BOUNDARY = re.compile(r"(?P<end>[.!?\u061f\u06d4])[\"'”’)\]]*\s+|(?P<cjk>[。！？])[」』”’）)]*\s*")
_OPENERS = "\"'“‘(["


@dataclass(frozen=True, slots=True)
class Sentence:
    """One abstract sentence; ``number`` is 1-based, as shown to models and readers ([S1])."""

    number: int
    text: str
    label: str | None = None


def _is_abbreviation(before: str, after: str) -> bool:
    original = before.rsplit(" ", 1)[-1].lstrip("([\"'")
    word = original.lower()
    if word in _CAN_END_SENTENCE:
        # "... by Smith et al. These data" ends a sentence; "et al. 2019" / "et al. (" does not.
        return not after[:1].isupper()
    if word in _ABBREVIATIONS:
        return True
    # Initials ("J. Smith", "S. aureus") are not sentence ends; units ("48 h.") may be.
    return len(original) == 1 and original.isupper()


def _starts_sentence(text: str, pos: int) -> bool:
    """Whether a sentence can start at ``pos``: a digit, a capital, a Greek letter ("β-blockers
    were…") or a letter of a script without case (Arabic, CJK, Hebrew, Devanagari…)."""
    while pos < len(text) and text[pos] in _OPENERS:
        pos += 1
    if pos >= len(text):
        return False
    char = text[pos]
    return char.isdigit() or (
        char.isalpha() and (not char.islower() or "\u0370" <= char <= "\u03ff")
    )


def _split_plain(text: str) -> list[str]:
    pieces: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        end = match.end()
        if match.group("cjk") is None:
            # Only the last word and the next character matter; bounded slices keep it linear.
            before = text[max(start, match.start() - 64) : match.start()]
            if match.group("end") == "." and _is_abbreviation(before, text[end : end + 1]):
                continue
            if not _starts_sentence(text, end):
                continue
        elif end >= len(text):
            continue
        pieces.append(text[start:end].strip())
        start = end
    tail = text[start:].strip()
    if tail:
        pieces.append(tail)
    return [p for p in pieces if p]


def _labelled_blocks(text: str) -> list[tuple[str | None, str]]:
    """Cut text at structured-abstract labels; text before the first label has none."""
    blocks: list[tuple[str | None, str]] = []
    label: str | None = None
    pos = 0
    for match in LABEL_RE.finditer(text):
        if match.start() != 0 and text[match.start() - 1] not in " .;:!?)":
            continue
        if not _LABEL_WORDS.search(match.group(1)):
            continue
        chunk = text[pos : match.start()].strip()
        if chunk:
            blocks.append((label, chunk))
        label = match.group(1).strip()
        pos = match.end()
    rest = text[pos:].strip()
    if rest:
        blocks.append((label, rest))
    return blocks


def split_sentences(text: str) -> list[Sentence]:
    """Split normalised abstract text into numbered sentences, carrying section labels."""
    out: list[Sentence] = []
    for label, block in _labelled_blocks(text):
        for piece in _split_plain(block):
            out.append(Sentence(len(out) + 1, piece, label))
    return out
