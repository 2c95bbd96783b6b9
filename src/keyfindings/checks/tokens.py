"""Words and numbers of a sentence, with their positions, for the checks that read meaning.

Grounding needs only a bag of words; meaning needs order ("8 vs 72%"), neighbours (which measure a
number or a direction word belongs to) and clause ends (how far a "not" reaches).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from keyfindings.checks.alignment import STOPWORDS
from keyfindings.numbers import canonical

_TOKEN = re.compile(
    r"(?P<num>(?<![\w.])(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+))"
    r"|(?P<word>[^\W\d_]+)"
    r"|(?P<sym>[%<>=≤≥±])"
    r"|(?P<sep>[,;:()\[\]]|\.(?=\s|\Z))"
)
_CONTRACTION = re.compile(r"n['’]t\b", re.I)
_CLAUSE_WORDS = frozenset({"but", "whereas", "while", "although", "though", "however", "yet"})
Kind = Literal["num", "word", "sym", "sep"]


@dataclass(frozen=True, slots=True)
class Token:
    """One word (lower-cased), number (canonical, signless), symbol or separator."""

    text: str
    kind: Kind
    stem: str
    start: int
    end: int
    content: bool

    @property
    def clause_end(self) -> bool:
        """True where a negation's or a measure's reach stops."""
        return (self.kind == "sep" and self.text in ",;:.") or self.text in _CLAUSE_WORDS


def _stem(word: str) -> str:
    return word[:6]


def tokenize(text: str) -> list[Token]:
    """Tokens of ``text`` in order; "didn't" reads as "did not", "non-significant" as "non"
    + "significant"."""
    text = _CONTRACTION.sub(" not", text)
    out: list[Token] = []
    for match in _TOKEN.finditer(text):
        kind: Kind = match.lastgroup  # type: ignore[assignment]
        raw = match.group(0)
        if kind == "num":
            value = canonical(raw) or raw
            out.append(Token(value, kind, value, match.start(), match.end(), True))
        elif kind == "word":
            word = raw.lower()
            name = raw.isupper() and (len(raw) > 1 or match.start() > 0)  # "group A", "IR"
            content = name or (len(word) > 2 and word not in STOPWORDS)
            out.append(Token(word, kind, _stem(word), match.start(), match.end(), content))
        else:
            out.append(Token(raw, kind, raw, match.start(), match.end(), False))
    return out


def window(tokens: list[Token], i: int, before: int, after: int) -> list[int]:
    """Indices of up to ``before``/``after`` content tokens around ``i``, within its clause."""
    picked: list[int] = []
    for step, limit in ((-1, before), (1, after)):
        j, taken = i + step, 0
        # A parenthesis may be entered, not left: "(no acceleration) and pH" stops at ")".
        exit_mark = ")]" if step > 0 else "(["
        while 0 <= j < len(tokens) and taken < limit and not tokens[j].clause_end:
            if tokens[j].kind == "sep" and tokens[j].text in exit_mark and _inside(tokens, i, step):
                break
            if tokens[j].content:
                picked.append(j)
                taken += 1
            j += step
    return picked


def _inside(tokens: list[Token], i: int, step: int) -> bool:
    """Is token ``i`` inside a parenthesis that closes (step 1) / opens (step -1) on that side?"""
    depth, j = 0, i - step
    opening, closing = ("(", ")") if step > 0 else (")", "(")
    while 0 <= j < len(tokens):
        if tokens[j].text == closing:
            depth += 1
        elif tokens[j].text == opening:
            if depth == 0:
                return True
            depth -= 1
        j -= step
    return False
