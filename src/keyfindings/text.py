"""Text normalisation: markup, entities, Unicode and whitespace.

Abstracts arrive as HTML, JATS or MathML fragments, with entities, odd spaces and control
characters. Every later step (sentences, numbers, grounding, the cache key) relies on one
canonical form, so this is the only place that decides what the text *is*.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable

# Openers of elements handled with their content. "[^<>]*" keeps each attempt within one tag, so
# the scan stays linear on hostile input (thousands of unclosed "<script" or "<!--").
_DROP_BLOCKS = re.compile(r"<(script|style|head)\b[^<>]*>", re.I)
_MATH = re.compile(r"<((?:mml:)?math)\b[^<>]*>", re.I)
_SUP = re.compile(r"<(sup)\b[^<>]*>", re.I)
_BLOCK_TAGS = re.compile(
    r"</?(?:p|div|br|li|ul|ol|sec|title|abstract|abstracttext|h[1-6]|tr|td|table|label|caption)"
    r"\b[^<>]*/?>",
    re.I,
)
_ANY_TAG = re.compile(r"</?[A-Za-z][\w:.-]*(?:\s[^<>]*)?/?>")
# C0/C1 controls except tab/newline/CR (which become spaces below), plus zero-width characters.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u00ad]")
_SPACE = re.compile(r"\s+")
# Unicode minus signs and dashes used as minus before a digit.
_MINUS = re.compile(r"[\u2212\u2012\u2013\uFE63\uFF0D](?=\d)")


def _replace_elements(text: str, opener: re.Pattern[str], inner: Callable[[str], str]) -> str:
    """Replace each ``<name …>content</name>`` by ``inner(content)``, in one forward pass.

    The first closing tag after an opener ends it (as a lazy regex would); once a closing tag is
    missing, no later opener of that name can close either, so it is never searched for again.
    """
    lower = text.lower()
    out: list[str] = []
    pos = 0
    unclosed: set[str] = set()
    for match in opener.finditer(text):
        name = match.group(1).lower()
        if match.start() < pos or name in unclosed:
            continue
        close = lower.find("</" + name, match.end())
        if close < 0:
            unclosed.add(name)
            continue
        end = text.find(">", close)
        end = len(text) if end < 0 else end + 1
        out += [text[pos : match.start()], inner(text[match.end() : close])]
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _drop_comments(text: str) -> str:
    out: list[str] = []
    pos = 0
    while (start := text.find("<!--", pos)) >= 0:
        end = text.find("-->", start + 4)
        if end < 0:
            break
        out += [text[pos:start], " "]
        pos = end + 3
    out.append(text[pos:])
    return "".join(out).replace("<![CDATA[", " ").replace("]]>", " ")


def strip_markup(text: str) -> str:
    """Remove HTML/JATS/MathML tags, keeping their text; superscripts become ``^n``.

    ``10<sup>6</sup>`` must not turn into the number 106, hence the caret. Linear in the length
    of the text whatever it holds: it runs on untrusted input before any length limit applies.
    """
    if "<" not in text:
        return text
    text = _drop_comments(text)
    text = _replace_elements(text, _DROP_BLOCKS, lambda inner: " ")
    text = _replace_elements(text, _MATH, lambda inner: _ANY_TAG.sub("", inner))
    text = _replace_elements(text, _SUP, lambda inner: "^" + _ANY_TAG.sub("", inner))
    text = _BLOCK_TAGS.sub(" ", text)
    return _ANY_TAG.sub("", text)


def normalize_text(text: str) -> str:
    """Canonical text: markup and entities gone, NFC, no control characters, single spaces."""
    text = strip_markup(text)
    # Entities may be double-encoded (&amp;lt;) in exported records; unescape until stable. Tags
    # that were entity-encoded ("&lt;script&gt;") come alive here, so strip them too.
    for _ in range(3):
        unescaped = html.unescape(text)
        if unescaped == text:
            break
        text = strip_markup(unescaped)
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\u00a0", " ").replace("\u2009", " ").replace("\u202f", " ")
    text = _CONTROL.sub("", text)
    text = _MINUS.sub("-", text)
    return _SPACE.sub(" ", text).strip()
