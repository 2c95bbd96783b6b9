"""A small sentence-role model: which part of an abstract each sentence is (background,
objective, methods, results, conclusions), for abstracts without section labels.

A linear model over features that carry across fields — where the sentence sits, its first
words, cue words, tense, numbers and statistics — plus a score for each pair of consecutive roles,
decoded with Viterbi so that an abstract reads in order (methods rarely follow conclusions). The
weights are trained by ``scripts/train_roles.py`` (averaged structured perceptron) and shipped as
``data/role_model.json``; nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

ROLES = ("background", "objective", "methods", "results", "conclusions")
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_STAT = re.compile(
    r"\bp\s*[<>=≤≥]|\bci\b|confidence interval|odds ratio|\bor\b\s*[=:,]?\s*\d|\bhr\b|±"
)
_PERCENT = re.compile(r"\d\s*%")
_NUMBER = re.compile(r"\d")
_PAST = re.compile(r"\b(was|were|had|did)\b|\b\w{3,}ed\b")
_PRESENT = re.compile(r"\b(is|are|has|have|does|do)\b")
_MODAL = re.compile(r"\b(may|might|could|should|would|can|must|need)\b")


def features(sentences: Sequence[str], i: int) -> list[str]:
    """Features of sentence ``i`` of an abstract (its neighbours' cues included)."""
    text = sentences[i].lower()
    words = _WORD.findall(text)
    n = len(sentences)
    out = [
        "bias",
        f"pos={min(9, i * 10 // max(n, 1))}",
        f"from_end={min(n - 1 - i, 3)}",
        f"from_start={min(i, 3)}",
        f"len={min(len(words) // 8, 6)}",
    ]
    out += [f"w={w}" for w in set(words)]
    out += [f"b={a}_{b}" for a, b in set(itertools.pairwise(words))]
    out += [f"first={w}" for w in words[:3]]
    if len(words) >= 2:
        out.append(f"first2={words[0]}_{words[1]}")
    out += _shape(text, "")
    # Results come as a run of sentences with numbers: where this one sits against that run.
    numeric = [i for i, s in enumerate(sentences) if _PERCENT.search(s) or _STAT.search(s.lower())]
    if numeric:
        out.append(
            "before_numbers"
            if i < numeric[0]
            else "after_numbers"
            if i > numeric[-1]
            else "within_numbers"
        )
    else:
        out.append("no_numbers")
    for step, tag in ((-1, "prev:"), (1, "next:")):
        if 0 <= i + step < n:
            other = sentences[i + step].lower()
            out += _shape(other, tag)
            out += [f"{tag}first={w}" for w in _WORD.findall(other)[:2]]
        else:
            out.append(f"{tag}none")
    return out


def _shape(text: str, tag: str) -> list[str]:
    marks = {
        "num": _NUMBER.search(text),
        "pct": _PERCENT.search(text),
        "stat": _STAT.search(text),
        "past": _PAST.search(text),
        "present": _PRESENT.search(text),
        "modal": _MODAL.search(text),
    }
    return [f"{tag}{name}" for name, hit in marks.items() if hit]


@dataclass(frozen=True)
class Tagged:
    """A sentence's role and how far ahead of the next-best role it is (0 = a tie)."""

    role: str
    margin: float


class RoleModel:
    """Weights per feature and role, and a score per role transition."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.roles: tuple[str, ...] = tuple(data["roles"])
        self.weights: dict[str, list[float]] = data["weights"]
        self.transitions: list[list[float]] = data["transitions"]
        self.start: list[float] = data["start"]
        self.meta: dict[str, Any] = data.get("meta", {})
        self.digest = ""  # sha256 of the file it came from, when shipped

    def emissions(self, feats: Sequence[Sequence[str]]) -> list[list[float]]:
        """Score of each role for each sentence (given its features), before transitions."""
        k = len(self.roles)
        rows = []
        for sentence_features in feats:
            row = [0.0] * k
            for feature in sentence_features:
                weights = self.weights.get(feature)
                if weights is not None:
                    for r in range(k):
                        row[r] += weights[r]
            rows.append(row)
        return rows

    def tag(
        self, sentences: Sequence[str], feats: Sequence[Sequence[str]] | None = None
    ) -> list[Tagged]:
        """The best sequence of roles, each with its max-marginal margin."""
        if not sentences:
            return []
        if feats is None:
            feats = [features(sentences, i) for i in range(len(sentences))]
        emit = self.emissions(feats)
        forward = self._forward(emit)
        backward = self._backward(emit)
        out = []
        for i in range(len(sentences)):
            totals = [forward[i][r] + backward[i][r] for r in range(len(self.roles))]
            order = sorted(range(len(totals)), key=totals.__getitem__, reverse=True)
            out.append(Tagged(self.roles[order[0]], totals[order[0]] - totals[order[1]]))
        return out

    def _forward(self, emit: list[list[float]]) -> list[list[float]]:
        k = len(self.roles)
        table = [[self.start[r] + emit[0][r] for r in range(k)]]
        for row in emit[1:]:
            prev = table[-1]
            table.append(
                [max(prev[p] + self.transitions[p][r] for p in range(k)) + row[r] for r in range(k)]
            )
        return table

    def _backward(self, emit: list[list[float]]) -> list[list[float]]:
        k = len(self.roles)
        table = [[0.0] * k]
        for row in reversed(emit[1:]):
            nxt = table[0]
            table.insert(
                0,
                [max(self.transitions[r][q] + row[q] + nxt[q] for q in range(k)) for r in range(k)],
            )
        return table


@cache
def shipped_model() -> RoleModel:
    """The model shipped in the package."""
    text = resources.files("keyfindings").joinpath("data/role_model.json").read_text("utf-8")
    model = RoleModel(json.loads(text))
    model.digest = hashlib.sha256(text.encode()).hexdigest()
    return model
