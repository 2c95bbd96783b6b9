"""Rules over a whole answer: sections the abstract covers are not left empty, nothing is said
twice, no section overflows."""

from __future__ import annotations

import re

from keyfindings.paper import Paper
from keyfindings.schema import SECTIONS, Issue, IssueCode, KeyFindings

MAX_FINDINGS = 8
# Labels in a structured abstract that promise content in a section.
_SECTION_LABELS = {
    "methodology": re.compile(r"METHOD|DESIGN|PATIENT|PARTICIPANT|SUBJECT|SETTING|MATERIAL"),
    "results": re.compile(r"RESULT|FINDING"),
    "significance": re.compile(r"CONCLUSION|INTERPRETATION|SIGNIFICANCE|IMPLICATION"),
}


def empty_sections(paper: Paper, findings: KeyFindings) -> list[Issue]:
    """A section is empty although the structured abstract has a labelled part for it."""
    labels = " ".join(s.label or "" for s in paper.sentences)
    return [
        Issue(
            code=IssueCode.EMPTY_SECTION,
            section=section,
            message=f"{section} is empty, but the abstract has a section labelled for it; "
            "summarise that section",
        )
        for section, pattern in _SECTION_LABELS.items()
        if not findings.section(section) and pattern.search(labels)
    ]


def too_many(paper: Paper, findings: KeyFindings) -> list[Issue]:
    """No section lists more than ``MAX_FINDINGS`` findings."""
    return [
        Issue(
            code=IssueCode.TOO_MANY,
            section=section,
            message=f"{section} has {len(findings.section(section))} findings; "
            f"at most {MAX_FINDINGS}",
        )
        for section in SECTIONS
        if len(findings.section(section)) > MAX_FINDINGS
    ]


def repeated(paper: Paper, findings: KeyFindings) -> list[Issue]:
    """Each thing is said once, in the section it belongs to."""
    issues: list[Issue] = []
    seen: dict[str, str] = {}
    for section in SECTIONS:
        for index, finding in enumerate(findings.section(section)):
            text = " ".join(finding.text.lower().split())
            if text in seen:
                issues.append(
                    Issue(
                        code=IssueCode.REPEATED,
                        section=section,
                        index=index,
                        message=f"{section}[{index}] repeats {seen[text]}; say each "
                        "thing once, in the section it belongs to",
                    )
                )
            else:
                seen[text] = f"{section}[{index}]"
    return issues


def empty_answer(paper: Paper, findings: KeyFindings) -> list[Issue]:
    """An answer with nothing in its three main sections says nothing."""
    if any(findings.section(s) for s in ("methodology", "results", "significance")):
        return []
    return [
        Issue(
            code=IssueCode.EMPTY_ANSWER,
            message="methodology, results and significance are all empty; the abstract "
            "supports at least one of them",
        )
    ]


RULES = (empty_sections, too_many, repeated, empty_answer)
