"""Text normalisation: markup, entities, Unicode and whitespace.

Abstracts arrive as HTML, JATS or MathML fragments, with entities, odd spaces and control
characters. Every later step (sentences, numbers, grounding, the cache key) relies on one
canonical form, so this is the only place that decides what the text *is*.
"""

from __future__ import annotations

import html
import re
import unicodedata

_DROP_BLOCKS = re.compile(r"<(script|style|head)\b[^>]*>.*?</\1\s*>", re.I | re.S)
_COMMENTS = re.compile(r"<!--.*?-->|<!\[CDATA\[|\]\]>", re.S)
_MATH = re.compile(r"<((?:mml:)?math)\b[^>]*>(.*?)</\1\s*>", re.I | re.S)
_SUP = re.compile(r"<sup\b[^>]*>(.*?)</sup\s*>", re.I | re.S)
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


def strip_markup(text: str) -> str:
    """Remove HTML/JATS/MathML tags, keeping their text; superscripts become ``^n``.

    ``10<sup>6</sup>`` must not turn into the number 106, hence the caret.
    """
    if "<" not in text:
        return text
    text = _COMMENTS.sub(" ", text)
    text = _DROP_BLOCKS.sub(" ", text)
    text = _MATH.sub(lambda m: _ANY_TAG.sub("", m.group(2)), text)
    text = _SUP.sub(lambda m: "^" + _ANY_TAG.sub("", m.group(1)), text)
    text = _BLOCK_TAGS.sub(" ", text)
    return _ANY_TAG.sub("", text)


def normalize_text(text: str) -> str:
    """Canonical text: markup and entities gone, NFC, no control characters, single spaces."""
    text = strip_markup(text)
    # Entities may be double-encoded (&amp;lt;) in exported records; unescape until stable.
    for _ in range(3):
        unescaped = html.unescape(text)
        if unescaped == text:
            break
        text = unescaped
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\u00a0", " ").replace("\u2009", " ").replace("\u202f", " ")
    text = _CONTROL.sub("", text)
    text = _MINUS.sub("-", text)
    return _SPACE.sub(" ", text).strip()
