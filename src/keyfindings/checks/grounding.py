"""Lexical rules: a finding's words and numbers occur in the abstract, its citations point
where its support is, its length is a finding's.
"""

from __future__ import annotations

from keyfindings.checks.context import Claim, Problem
from keyfindings.numbers import unsupported_numbers
from keyfindings.schema import IssueCode

# Share of a finding's content words that its evidence sentences must contain. Paraphrase keeps
# most content words; an invented claim shares few. 0.5 accepted every finding the 1.5B model
# copied and rejected invented populations in the review cases.
MIN_COVERAGE = 0.5
MAX_FINDING_WORDS = 60
MIN_FINDING_WORDS = 3


def lengths(claim: Claim) -> list[Problem]:
    """A finding is one claim: not a paragraph, not a fragment of two words."""
    n_words = len(claim.text.split())
    if n_words > MAX_FINDING_WORDS:
        return [
            Problem(
                IssueCode.TOO_LONG,
                f"{n_words} words; keep each finding under {MAX_FINDING_WORDS} words",
            )
        ]
    if n_words < MIN_FINDING_WORDS:
        return [
            Problem(
                IssueCode.TOO_SHORT,
                "too short to be a finding; write a full claim or leave the section empty",
            )
        ]
    return []


def numbers(claim: Claim) -> list[Problem]:
    """Every number the finding states occurs in the abstract."""
    missing = unsupported_numbers(claim.text, claim.paper_numbers)
    if not missing:
        return []
    return [
        Problem(
            IssueCode.UNSUPPORTED_NUMBER,
            f"the abstract does not contain {', '.join(missing)}; "
            "use only numbers the abstract states, copied exactly",
        )
    ]


def grounding(claim: Claim) -> list[Problem]:
    """Some abstract sentences cover most of the finding's content words."""
    if claim.coverage >= MIN_COVERAGE:
        return []
    return [
        Problem(
            IssueCode.UNGROUNDED,
            f"no abstract sentence supports this (best cover {claim.coverage:.0%} of its "
            "content words); state only what the abstract says",
        )
    ]


def citations(claim: Claim) -> list[Problem]:
    """The model's own citations exist and point where the support is."""
    n_sentences = len(claim.sentences)
    cited, evidence = claim.finding.cited, claim.finding.evidence
    bad = [c for c in cited if not 1 <= c <= n_sentences]
    if bad:
        return [
            Problem(
                IssueCode.BAD_CITATION,
                f"cites {bad}, but the abstract has sentences 1-{n_sentences}",
            )
        ]
    if cited and evidence and not set(cited) & set(evidence):
        return [
            Problem(
                IssueCode.CITATION_MISMATCH,
                f"cites {cited}, but the support is in {evidence}",
                "warning",
            )
        ]
    return []
