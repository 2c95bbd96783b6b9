"""Place: each finding sits in the field its evidence belongs to.

Methodology comes from objective and methods sentences (background only for the question asked),
results from results sentences, significance from conclusions (from results when the abstract
states no conclusion), limitations only from sentences that state a limitation. Roles come from
the abstract's own labels or the shipped sentence-role model (``keyfindings.roles``): a mismatch
is an error only where the role is certain, a warning otherwise, so a tagger's mistake never
flags a good finding. Before any rule runs, ``arrange`` fixes what needs no model: a finding
whose evidence plainly belongs to another field moves there, and a limitation no sentence states
is removed.
"""

from __future__ import annotations

import re

from keyfindings.checks.context import Claim, Problem, SentenceView
from keyfindings.paper import Paper
from keyfindings.roles import Role
from keyfindings.schema import SECTIONS, Finding, Issue, IssueCode, KeyFindings, StudyType

FIELD_ROLES: dict[str, frozenset[Role]] = {
    "methodology": frozenset({Role.OBJECTIVE, Role.METHODS, Role.BACKGROUND}),
    "results": frozenset({Role.RESULTS}),
    # A conclusion may well name the study's limits.
    "significance": frozenset({Role.CONCLUSIONS, Role.LIMITATION}),
    "limitations": frozenset({Role.LIMITATION}),
}
# Where a finding goes when all its evidence has one certain role.
_HOME = {Role.METHODS: "methodology", Role.RESULTS: "results", Role.CONCLUSIONS: "significance"}
_VERB = re.compile(
    r"\b(is|are|was|were|be|been|being|has|have|had|do|does|did|can|could|may|might|will|would"
    r"|should|must|shows?|showed|shown|fell|rose|grew|found|led|took|gave|made|saw|became|ran"
    r"|began|kept|held|met|lost|won|got|went|came|left|brought|drew|paid|spent|stood|told|chose"
    r"|underwent|thought|understood|wrote|fall|rise|grow|differ|occur|remain|appear|seem)\b"
    r"|\b\w{3,}(ed|es)\b",
    re.I,
)


def allowed(section: str, view: list[SentenceView]) -> frozenset[Role]:
    """The roles a field may draw on in this abstract."""
    roles = FIELD_ROLES[section]
    if section == "significance" and not any(
        s.role and s.role.role == Role.CONCLUSIONS for s in view
    ):
        return roles | {Role.RESULTS}  # no conclusion stated: the main result is its significance
    return roles


def _roles(evidence: list[SentenceView]) -> list[tuple[int, Role, bool]]:
    return [(s.number, s.role.role, s.role.certain) for s in evidence if s.role is not None]


def arrange(view: list[SentenceView], findings: KeyFindings) -> list[Issue]:
    """Move findings whose evidence certainly belongs to another field (never a field's only
    finding); remove limitations that no sentence states. Returns what was done, as warnings:
    nothing for the model to fix."""
    done: list[Issue] = []
    for section in SECTIONS:
        keep: list[Finding] = []
        for index, finding in enumerate(findings.section(section)):
            evidence = [view[n - 1] for n in finding.evidence]
            roles = _roles(evidence)
            if section == "limitations" and not any(r == Role.LIMITATION for _, r, _ in roles):
                done.append(
                    _note(
                        IssueCode.REMOVED_LIMITATION,
                        section,
                        index,
                        finding,
                        ("removed: no abstract sentence states this limitation"),
                    )
                )
                continue
            target = _target(section, roles, view)
            # Never empty a field by moving its last finding: ask the model instead.
            alone = len(findings.section(section)) == 1
            if target is not None and not alone:
                findings.section(target).append(finding)
                done.append(
                    _note(
                        IssueCode.MOVED,
                        section,
                        index,
                        finding,
                        (
                            f"moved to {target}: it restates "
                            + ", ".join(f"S{n} ({r})" for n, r, _ in roles)
                        ),
                    )
                )
                continue
            keep.append(finding)
        setattr(findings, section, keep)
    return done


def _target(
    section: str, roles: list[tuple[int, Role, bool]], view: list[SentenceView]
) -> str | None:
    if section == "limitations" or not roles or not all(certain for *_, certain in roles):
        return None
    if any(role in allowed(section, view) for _, role, _ in roles):
        return None
    homes = {_HOME.get(role) for _, role, _ in roles}
    return homes.pop() if len(homes) == 1 and None not in homes else None


def _note(code: IssueCode, section: str, index: int, finding: Finding, message: str) -> Issue:
    return Issue(
        code=code,
        severity="warning",
        section=section,
        index=index,
        text=finding.text,
        message=f'{section}[{index}] "{finding.text[:77]}": {message}',
    )


def field(claim: Claim) -> list[Problem]:
    """The finding's evidence has a role its field may draw on."""
    roles = _roles(claim.evidence)
    if claim.section == "limitations" or not roles:
        return []
    fits = allowed(claim.section, claim.sentences)
    if any(role in fits for _, role, _ in roles):
        return []
    cited = ", ".join(f"S{n} is {role}" for n, role, _ in roles)
    wanted = [s.number for s in claim.sentences if s.role and s.role.role in fits]
    where = f" (S{', S'.join(map(str, wanted))})" if wanted else ""
    certain = all(c for *_, c in roles)
    return [
        Problem(
            IssueCode.WRONG_SECTION,
            f"{cited}; {claim.section} should restate {' or '.join(sorted(fits))} sentences{where}",
            "error" if certain else "warning",
        )
    ]


def fragment(claim: Claim) -> list[Problem]:
    """A finding is a sentence: a capital (or a digit) first, and a verb."""
    text = claim.text.strip()
    first = re.split(r"[^\w]", text, maxsplit=1)[0]
    if first.isalpha() and first.islower():  # not "mRNA", "p53", "epiDWI"
        return [
            Problem(
                IssueCode.FRAGMENT,
                "starts in lower case, like a cut-off piece; write a whole sentence",
            )
        ]
    if len(text.split()) >= 4 and not _VERB.search(text):
        return [Problem(IssueCode.FRAGMENT, "has no verb; write a whole sentence", "warning")]
    return []


# ---- study type -----------------------------------------------------------------------------

_DESIGN_CUES: list[tuple[re.Pattern[str], StudyType]] = [
    (
        re.compile(r"meta-?analys[ie]s|systematic(al)? review", re.I),
        StudyType.SYSTEMATIC_REVIEW_OR_META_ANALYSIS,
    ),
    (
        re.compile(
            r"randomi[sz]ed (controlled |clinical |double-blind |placebo-controlled )*trial"
            r"|randomly (assigned|allocated)|randomi[sz]ed to\b",
            re.I,
        ),
        StudyType.RANDOMIZED_CONTROLLED_TRIAL,
    ),
    (re.compile(r"case[- ]control", re.I), StudyType.CASE_CONTROL),
    (
        re.compile(
            r"\bcohort (study|studies)|prospective(ly)? (cohort|follow)|retrospective cohort", re.I
        ),
        StudyType.COHORT,
    ),
    (re.compile(r"cross[- ]sectional", re.I), StudyType.CROSS_SECTIONAL),
    (
        re.compile(
            r"\bcase report|we (report|describe|present) (a|an|the) (case|\d+-year-old)"
            r"|case series",
            re.I,
        ),
        StudyType.CASE_REPORT_OR_SERIES,
    ),
]


def expected_study_types(paper: Paper) -> list[StudyType]:
    """Designs the title, abstract and keywords (MeSH publication types) name, strongest first."""
    text = " ".join([paper.title, paper.abstract, *paper.keywords])
    return [design for pattern, design in _DESIGN_CUES if pattern.search(text)]


def study_type(paper: Paper, findings: KeyFindings) -> list[Issue]:
    """The study type agrees with what the abstract says of its design."""
    named = expected_study_types(paper)
    if not named or findings.study_type in named:
        return []
    first = named[0]
    label = first.value.replace("_", " ")
    return [
        Issue(
            code=IssueCode.STUDY_TYPE,
            # Several designs named (a trial's cohort, a review of trials): say so, don't insist.
            severity="error" if len(named) == 1 else "warning",
            message=f"study_type is {findings.study_type.value}, but the abstract describes a "
            f"{label}; use {first.value}",
        )
    ]
