"""Checks on every answer: grounding by alignment, numbers, citations, lengths → issues.

Small models cite sentence numbers badly (a 1.5B model listed every sentence, or numbered them by
position), so support is never taken from the model: each finding is aligned with the abstract's
sentences by content words, and the model's citations are only compared against that.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from keyfindings.numbers import unsupported_numbers
from keyfindings.paper import Paper
from keyfindings.schema import SECTIONS, Finding, Issue, KeyFindings

# Share of a finding's content words that its evidence sentences must contain. Paraphrase keeps
# most content words; an invented claim shares few. 0.5 accepted every finding the 1.5B model
# copied and rejected invented populations in the review cases.
CHECKS_VERSION = "3"  # bump when acceptance changes: it is part of the cache key
MIN_COVERAGE = 0.5
MAX_EVIDENCE = 3
MAX_FINDING_WORDS = 60
MIN_FINDING_WORDS = 3
MAX_FINDINGS = 8
# Labels in a structured abstract that promise content in a section.
_SECTION_LABELS = {
    "methodology": re.compile(r"METHOD|DESIGN|PATIENT|PARTICIPANT|SUBJECT|SETTING|MATERIAL"),
    "results": re.compile(r"RESULT|FINDING"),
    "significance": re.compile(r"CONCLUSION|INTERPRETATION|SIGNIFICANCE|IMPLICATION"),
}
_STOPWORDS = frozenset(
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
        elif word.isdigit() or (len(word) > 2 and word not in _STOPWORDS):
            out.add(word[:6])
    return out


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
        gains = [len((words & s) - covered) for s in sentence_words]
        best = max(range(len(gains)), key=gains.__getitem__, default=-1)
        if best < 0 or gains[best] == 0 or (chosen and gains[best] < 2):
            break
        chosen.append(best + 1)
        covered |= words & sentence_words[best]
    return Alignment(sorted(chosen), len(covered) / len(words))


def _finding_issues(
    paper: Paper, section: str, index: int, finding: Finding, sentence_words: list[set[str]]
) -> list[Issue]:
    where = f"{section}[{index}]"
    quote = finding.text if len(finding.text) <= 80 else finding.text[:77] + "..."
    issues: list[Issue] = []

    def add(code: str, message: str, severity: str = "error") -> None:
        issues.append(
            Issue(
                code=code,
                message=f'{where} "{quote}": {message}',
                severity="warning" if severity == "warning" else "error",
                section=section,
                index=index,
            )
        )

    n_words = len(finding.text.split())
    if n_words > MAX_FINDING_WORDS:
        add("too_long", f"{n_words} words; keep each finding under {MAX_FINDING_WORDS} words")
    elif n_words < MIN_FINDING_WORDS:
        add("too_short", "too short to be a finding; write a full claim or leave the section empty")
    missing = unsupported_numbers(finding.text, paper.numbers)
    if missing:
        add(
            "unsupported_number",
            f"the abstract does not contain {', '.join(missing)}; "
            "use only numbers the abstract states, copied exactly",
        )
    alignment = align(finding.text, sentence_words)
    finding.evidence = alignment.evidence
    if alignment.coverage < MIN_COVERAGE:
        add(
            "ungrounded",
            f"no abstract sentence supports this (best cover "
            f"{alignment.coverage:.0%} of its content words); state only what the abstract says",
        )
    n_sentences = len(sentence_words)
    bad = [c for c in finding.cited if not 1 <= c <= n_sentences]
    if bad:
        add("bad_citation", f"cites {bad}, but the abstract has sentences 1-{n_sentences}")
    elif finding.cited and alignment.evidence and not set(finding.cited) & set(alignment.evidence):
        add(
            "citation_mismatch",
            f"cites {finding.cited}, but the support is in {alignment.evidence}",
            severity="warning",
        )
    return issues


def _section_issues(paper: Paper, findings: KeyFindings) -> list[Issue]:
    issues = []
    labels = " ".join(s.label or "" for s in paper.sentences)
    for section, pattern in _SECTION_LABELS.items():
        if not findings.section(section) and pattern.search(labels):
            issues.append(
                Issue(
                    code="empty_section",
                    section=section,
                    message=f"{section} is empty, but the abstract has a section "
                    f"labelled for it; summarise that section",
                )
            )
    for section in SECTIONS:
        count = len(findings.section(section))
        if count > MAX_FINDINGS:
            issues.append(
                Issue(
                    code="too_many",
                    section=section,
                    message=f"{section} has {count} findings; at most {MAX_FINDINGS}",
                )
            )
    seen: dict[str, str] = {}
    for section in SECTIONS:
        for index, finding in enumerate(findings.section(section)):
            text = " ".join(finding.text.lower().split())
            if text in seen:
                issues.append(
                    Issue(
                        code="repeated",
                        section=section,
                        index=index,
                        message=f"{section}[{index}] repeats {seen[text]}; say each "
                        "thing once, in the section it belongs to",
                    )
                )
            else:
                seen[text] = f"{section}[{index}]"
    if not any(findings.section(s) for s in ("methodology", "results", "significance")):
        issues.append(
            Issue(
                code="empty_answer",
                message="methodology, results and significance "
                "are all empty; the abstract supports at least one of them",
            )
        )
    return issues


def check_findings(paper: Paper, findings: KeyFindings) -> list[Issue]:
    """Fill each finding's ``evidence`` and return every problem found (errors and warnings)."""
    sentence_words = [content_words(s.text) for s in paper.sentences]
    issues = _section_issues(paper, findings)
    for section in SECTIONS:
        for index, finding in enumerate(findings.section(section)):
            issues.extend(_finding_issues(paper, section, index, finding, sentence_words))
    return issues


def errors_only(issues: list[Issue]) -> list[Issue]:
    """The issues that make an answer unacceptable."""
    return [i for i in issues if i.severity == "error"]
