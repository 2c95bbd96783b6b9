"""Checks on every answer → issues. ``check_findings`` is the one entry point that runs them all.

A rule is a function: per-finding rules take a ``Claim`` (the finding, its tokens and the abstract
sentences alignment chose as its evidence) and return ``Problem``s; answer-wide rules take the
paper and the findings and return ``Issue``s. Adding a rule means adding it to a ``RULES`` tuple.

- ``grounding``: words, numbers, citations and length (lexical).
- ``faithfulness``: meaning — numbers in their places, direction, negation, certainty, exchanged
  groups, a subgroup's result stated for all.
- ``placement``: the right content in the right field (sentence roles), fragments, study type.
- ``sections``: the answer as a whole.
- ``injection``: instructions planted in the abstract (never evidence), markup in findings.
"""

from __future__ import annotations

from keyfindings.checks import faithfulness, grounding, injection, placement, sections
from keyfindings.checks.alignment import align, content_words
from keyfindings.checks.context import Claim, Problem, abstract_view
from keyfindings.numbers import unsupported_numbers
from keyfindings.paper import Paper
from keyfindings.schema import SECTIONS, Finding, Issue, IssueCode, KeyFindings

# Part of the cache key: bump whenever what is accepted changes (``keyfindings recheck`` then
# re-runs the checks on stored answers instead of asking the model again).
CHECKS_VERSION = "11"
FINDING_RULES = (
    grounding.lengths,
    grounding.numbers,
    grounding.grounding,
    grounding.citations,
    injection.markup,
    placement.field,
    placement.fragment,
    *faithfulness.RULES,
)
ANSWER_RULES = (*sections.RULES, placement.study_type)
# What the meaning rules report: the finding says something other than its evidence.
FAITHFULNESS = frozenset(
    {
        IssueCode.CONTRADICTS,
        IssueCode.UNSTATED_DIRECTION,
        IssueCode.OVERSTATED,
        IssueCode.MISPLACED_NUMBER,
        IssueCode.SWAPPED,
        IssueCode.SCOPE_DROPPED,
    }
)
# What makes a finding unverified: it is withheld from readers if still failing after re-asks.
UNVERIFIED = FAITHFULNESS | {
    IssueCode.UNGROUNDED,
    IssueCode.UNSUPPORTED_NUMBER,
    IssueCode.MARKUP,
}
_QUOTE = 80

__all__ = [
    "CHECKS_VERSION",
    "FAITHFULNESS",
    "UNVERIFIED",
    "Claim",
    "Problem",
    "align",
    "check_claim",
    "check_findings",
    "content_words",
    "errors_only",
    "fill_evidence",
    "withhold",
]


def _as_issue(claim: Claim, problem: Problem) -> Issue:
    text = claim.text
    quote = text if len(text) <= _QUOTE else text[: _QUOTE - 3] + "..."
    return Issue(
        code=problem.code,
        message=f'{claim.section}[{claim.index}] "{quote}": {problem.message}',
        severity="warning" if problem.severity == "warning" else "error",
        section=claim.section,
        index=claim.index,
    )


def check_claim(claim: Claim) -> list[Issue]:
    """Every per-finding rule on one claim."""
    return [_as_issue(claim, p) for rule in FINDING_RULES for p in rule(claim)]


def fill_evidence(paper: Paper, findings: KeyFindings) -> dict[int, float]:
    """Set each finding's ``evidence`` by alignment; return each finding's coverage (by id).
    Sentences that read as instructions to the model are never evidence."""
    planted = set(injection.instruction_sentences(paper))
    sentence_words = [
        set() if s.number in planted else content_words(s.text) for s in paper.sentences
    ]
    coverage: dict[int, float] = {}
    for section in SECTIONS:
        for finding in findings.section(section):
            alignment = align(finding.text, sentence_words)
            finding.evidence = alignment.evidence
            coverage[id(finding)] = alignment.coverage
    return coverage


def check_findings(paper: Paper, findings: KeyFindings) -> list[Issue]:
    """Fill each finding's ``evidence``, put findings whose evidence certainly belongs to another
    field there (and drop limitations no sentence states), then return every problem found
    (errors and warnings, what was moved or dropped included)."""
    view = abstract_view(paper)
    coverage = fill_evidence(paper, findings)

    def sound(finding: Finding) -> bool:
        grounded = coverage.get(id(finding), 0.0) >= grounding.MIN_COVERAGE
        return grounded and not unsupported_numbers(finding.text, paper.numbers)

    issues = placement.arrange(view, findings, sound)
    coverage = fill_evidence(paper, findings)  # again: arranging may add or complete findings
    issues += [issue for rule in ANSWER_RULES for issue in rule(paper, findings)]
    for section in SECTIONS:
        for index, finding in enumerate(findings.section(section)):
            claim = Claim(section, index, finding, view, paper.numbers, coverage[id(finding)])
            issues.extend(check_claim(claim))
    return issues


def withhold(paper: Paper, findings: KeyFindings, issues: list[Issue]) -> tuple[int, list[Issue]]:
    """Remove from ``findings`` every finding with an ``UNVERIFIED`` error, so readers never see
    it; return how many, and the issues of what remains plus one ``withheld`` issue per removed
    finding (its text and why)."""
    bad = {(i.section, i.index) for i in issues if i.severity == "error" and i.code in UNVERIFIED}
    if not bad:
        return 0, issues
    why: dict[tuple[str | None, int | None], list[str]] = {}
    for issue in issues:
        if (issue.section, issue.index) in bad and issue.code in UNVERIFIED:
            why.setdefault((issue.section, issue.index), []).append(issue.code)
    removed: list[Issue] = []
    for section in SECTIONS:
        kept = []
        for index, finding in enumerate(findings.section(section)):
            if (section, index) not in bad:
                kept.append(finding)
                continue
            codes = ", ".join(dict.fromkeys(why[(section, index)]))
            removed.append(
                Issue(
                    code=IssueCode.WITHHELD,
                    message=f"{section}[{index}] withheld ({codes}): {finding.text}",
                    section=section,
                    index=index,
                    text=finding.text,
                )
            )
        setattr(findings, section, kept)
    return len(removed), [*check_findings(paper, findings), *removed]


def errors_only(issues: list[Issue]) -> list[Issue]:
    """The issues that make an answer unacceptable."""
    return [i for i in issues if i.severity == "error"]
