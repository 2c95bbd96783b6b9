"""Alignment: which abstract sentences best cover a claim's content words.

Small models cite sentence numbers badly (a 1.5B model listed every sentence, or numbered them by
position), so support is never taken from the model: each finding is aligned with the abstract's
sentences by content words, and the model's citations are only compared against that.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_EVIDENCE = 3
STOPWORDS = frozenset(
    [
        "the",
        "and",
        "for",
        "with",
        "was",
        "were",
        "are",
        "this",
        "that",
        "these",
        "those",
        "from",
        "into",
        "than",
        "then",
        "there",
        "their",
        "them",
        "they",
        "which",
        "while",
        "who",
        "whom",
        "whose",
        "what",
        "when",
        "where",
        "have",
        "has",
        "had",
        "been",
        "being",
        "not",
        "but",
        "also",
        "its",
        "our",
        "out",
        "per",
        "via",
        "all",
        "any",
        "each",
        "both",
        "more",
        "most",
        "other",
        "some",
        "such",
        "only",
        "same",
        "very",
        "can",
        "could",
        "may",
        "might",
        "must",
        "shall",
        "should",
        "will",
        "would",
        "did",
        "does",
        "doing",
        "done",
        "one",
        "two",
        "over",
        "under",
        "between",
        "among",
        "after",
        "before",
        "during",
        "about",
        "above",
        "below",
        "within",
        "without",
        "upon",
        "against",
        "further",
        "study",
        "studies",
        "paper",
        "authors",
        "author",
        "abstract",
        "findings",
        "finding",
        "results",
        "result",
        "showed",
        "shows",
        "show",
        "found",
        "suggest",
        "suggests",
        "suggested",
        "using",
        "used",
        "use",
        "based",
        "reported",
        "report",
    ]
)
_WORD = re.compile(r"[^\W_]+")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")


def content_words(text: str) -> set[str]:
    """Lower-cased content words, crudely stemmed (6-letter prefix; CJK as character bigrams)."""
    out: set[str] = set()
    for word in _WORD.findall(text.lower()):
        if _CJK.search(word):
            out.update(word[i : i + 2] for i in range(max(1, len(word) - 1)))
        elif word.isdigit() or (len(word) > 2 and word not in STOPWORDS):
            out.add(word[:6])
    return out


def _gain(new: set[str]) -> int:
    return len(new) + sum(w.isdigit() for w in new)


@dataclass(frozen=True, slots=True)
class Alignment:
    """The sentences that best cover a claim, and the share of its content words they cover."""

    evidence: list[int]
    coverage: float


def align(claim: str, sentence_words: list[set[str]]) -> Alignment:
    """Greedy cover of the claim's content words by at most ``MAX_EVIDENCE`` sentences."""
    words = content_words(claim)
    if not words:
        return Alignment([], 0.0)
    covered: set[str] = set()
    chosen: list[int] = []
    for _ in range(MAX_EVIDENCE):
        # A number counts as two words: a finding that joins "71 patients" (S1) to S2's
        # controls takes its number from S1, however few other words S1 adds.
        gains = [_gain((words & s) - covered) for s in sentence_words]
        # Ties go to the shorter sentence: the one that says this, not one that says more.
        best = max(range(len(gains)), key=lambda k: (gains[k], -len(sentence_words[k])), default=-1)
        if best < 0 or gains[best] == 0 or (chosen and gains[best] < 2):
            break
        chosen.append(best + 1)
        covered |= words & sentence_words[best]
    return Alignment(sorted(chosen), len(covered) / len(words))
