"""What every per-finding rule reads: the claim, its tokens, and the abstract sentences that
support it. Built once per finding, so each rule stays a short function of one argument."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple

from keyfindings.checks.tokens import Token, tokenize
from keyfindings.numbers import number_set
from keyfindings.paper import Paper
from keyfindings.roles import AbstractRoles, SentenceRole
from keyfindings.schema import Finding, IssueCode


class Problem(NamedTuple):
    """What one rule found wrong with one finding; the caller adds where and which finding."""

    code: IssueCode
    message: str
    severity: str = "error"


@dataclass(frozen=True)
class SentenceView:
    """One abstract sentence, tokenised once for every finding that rests on it."""

    number: int
    text: str
    label: str | None
    tokens: list[Token]
    numbers: frozenset[str]
    stems: frozenset[str]
    role: SentenceRole | None = None

    @classmethod
    def of(
        cls, number: int, text: str, label: str | None = None, role: SentenceRole | None = None
    ) -> SentenceView:
        """Tokenise a sentence and collect its numbers and content stems."""
        tokens = tokenize(text)
        stems = frozenset(t.stem for t in tokens if t.content)
        return cls(number, text, label, tokens, number_set(text), stems, role)


def abstract_view(paper: Paper) -> list[SentenceView]:
    """Every sentence of the paper's abstract, tokenised, with its role."""
    roles = AbstractRoles(paper).roles
    return [
        SentenceView.of(s.number, s.text, s.label, role)
        for s, role in zip(paper.sentences, roles, strict=True)
    ]


@dataclass
class Claim:
    """One finding in its place (``section[index]``), with the sentences alignment chose."""

    section: str
    index: int
    finding: Finding
    sentences: list[SentenceView]
    paper_numbers: frozenset[str]
    coverage: float = 0.0
    tokens: list[Token] = field(init=False)

    def __post_init__(self) -> None:
        self.tokens = tokenize(self.finding.text)

    @property
    def text(self) -> str:
        """The finding's text."""
        return self.finding.text

    @cached_property
    def evidence(self) -> list[SentenceView]:
        """The supporting sentences, in abstract order."""
        return [self.sentences[n - 1] for n in self.finding.evidence]

    @cached_property
    def primary(self) -> SentenceView | None:
        """The evidence sentence that shares the most words with the finding."""
        return max(
            self.evidence,
            key=lambda s: (len(s.stems & self.stems), -len(s.stems)),
            default=None,
        )

    def covers(self, view: SentenceView, share: float) -> bool:
        """Do the finding and ``view`` share at least ``share`` of the finding's words?"""
        return len(self.stems & view.stems) >= share * len(self.stems)

    @cached_property
    def stems(self) -> frozenset[str]:
        """The finding's content stems."""
        return frozenset(t.stem for t in self.tokens if t.content)
