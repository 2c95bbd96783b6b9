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
from collections.abc import Callable

from keyfindings.checks.context import Claim, Problem, SentenceView
from keyfindings.checks.grounding import MAX_FINDING_WORDS, MIN_FINDING_WORDS
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
# Fields the abstract's own sentence may stand in for, when moving a finding empties them.
_FILLABLE = frozenset({"methodology", "results", "significance"})
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


def arrange(
    view: list[SentenceView], findings: KeyFindings, sound: Callable[[Finding], bool]
) -> list[Issue]:
    """Fix what needs no model, and say so (warnings): a lower-case piece cut from an abstract
    sentence becomes that sentence; a finding whose evidence certainly belongs to another field
    moves there — and if that empties its field, the abstract's own sentence for the field takes
    its place; a limitation no sentence states is removed. A small model asked again rarely
    fixes these, and each re-ask costs as much as the first answer. Only ``sound`` findings
    (grounded, their numbers in the abstract) are moved: the others go to the checks."""
    done = _complete_fragments(view, findings) + _replace_stubs(view, findings)
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
                        "removed: no abstract sentence states this limitation",
                    )
                )
                continue
            target = _target(section, roles, view)
            alone = len(findings.section(section)) == 1
            stand_in = _stand_in(section, view, findings) if alone else None
            # Moving a field's only finding empties it: only when the abstract has nothing for
            # that field anyway, or its own sentence can stand in.
            stuck = alone and stand_in is None and _has(view, section)
            if target is None or stuck or not sound(finding):
                keep.append(finding)
                continue
            there = findings.section(target)
            if not any(f.text == finding.text for f in there):
                there.append(finding)  # (said there already, word for word: not repeated)
            done.append(
                _note(
                    IssueCode.MOVED,
                    section,
                    index,
                    finding,
                    f"moved to {target}: it restates "
                    + ", ".join(f"S{n} ({r})" for n, r, _ in roles),
                )
            )
            if stand_in is not None:
                keep.append(stand_in)
                done.append(
                    _note(
                        IssueCode.FILLED,
                        section,
                        0,
                        stand_in,
                        f"the abstract's own {section} sentence (S{stand_in.evidence[0]})",
                    )
                )
        setattr(findings, section, keep)
    return done


def _has(view: list[SentenceView], section: str) -> bool:
    fits = allowed(section, view)
    return any(s.role and s.role.role in fits for s in view)


def _stand_in(section: str, view: list[SentenceView], findings: KeyFindings) -> Finding | None:
    """The abstract's first sentence of this field's role not cited elsewhere (for methodology
    a methods sentence first; then one the role model is sure of; for results, one with
    numbers)."""
    if section not in _FILLABLE:
        return None
    used = {n for name in SECTIONS for f in findings.section(name) for n in f.evidence}
    fits = FIELD_ROLES[section]
    candidates = [
        s
        for s in view
        if s.role
        and s.role.role in fits
        and s.number not in used
        and len(s.text.split()) <= MAX_FINDING_WORDS
    ]
    # The design before the question, the question before the background.
    order = [Role.METHODS, Role.OBJECTIVE, Role.BACKGROUND]
    candidates.sort(
        key=lambda s: (
            order.index(s.role.role) if s.role and s.role.role in order else 0,
            not (s.role and s.role.certain),
            section == "results" and not s.numbers,
        )
    )
    if not candidates:
        return None
    return Finding(text=candidates[0].text, evidence=[candidates[0].number])


def _complete_fragments(view: list[SentenceView], findings: KeyFindings) -> list[Issue]:
    """A finding starting in lower case is a piece cut from a sentence: the whole sentence
    takes its place when the abstract has it, else it is capitalised."""
    done = []
    for section in SECTIONS:
        for index, finding in enumerate(findings.section(section)):
            if not _lower_start(finding.text):
                continue
            original = Finding(text=finding.text)
            piece = " ".join(finding.text.lower().rstrip(".").split())
            whole = next(
                (
                    s
                    for s in view
                    if piece in " ".join(s.text.lower().split())
                    and len(s.text.split()) <= MAX_FINDING_WORDS
                ),
                None,
            )
            if whole is not None:
                why = f"a piece of S{whole.number}; replaced by the whole sentence"
                finding.text, finding.evidence = whole.text, [whole.number]
            else:
                why = "started in lower case; capitalised"
                finding.text = finding.text[:1].upper() + finding.text[1:]
            done.append(_note(IssueCode.COMPLETED, section, index, original, why))
    return done


def _replace_stubs(view: list[SentenceView], findings: KeyFindings) -> list[Issue]:
    """A finding of a word or two ("Observational study.") tells a reader nothing: it is
    dropped when its field says more elsewhere, or the abstract's own sentence for the field
    takes its place. (Asked again, a small model rarely writes more.)"""
    done = []
    for section in _FILLABLE:
        items = findings.section(section)
        for index, stub in enumerate(list(items)):
            if len(stub.text.split()) >= MIN_FINDING_WORDS:
                continue
            if len(items) > 1:
                items.remove(stub)
                why = "dropped: too short to be a finding"
            else:
                stub.evidence = []  # the sentence it abbreviates is the one to stand in
                stand_in = _stand_in(section, view, findings)
                if stand_in is None:
                    continue  # nothing better to show: the length rule flags it
                items[0] = stand_in
                why = f"too short; the abstract's own {section} sentence (S{stand_in.evidence[0]})"
            done.append(_note(IssueCode.FILLED, section, index, stub, why))
    return done


def _lower_start(text: str) -> bool:
    first = re.split(r"[^\w]", text.strip(), maxsplit=1)[0]
    return first.isalpha() and first.islower()  # not "mRNA", "p53", "epiDWI"


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
    if _lower_start(text):
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
    """The study type agrees with the design the abstract names. Where it names exactly one,
    the study type is set to it (no model call: the words decide); where it names several (a
    trial's cohort, a review of trials) and the answer is none of them, a warning."""
    named = expected_study_types(paper)
    if not named or findings.study_type in named:
        return []
    was, first = findings.study_type, named[0]
    if len(named) == 1:
        findings.study_type = first
        message = f"study_type was {was.value}, but the abstract describes a {first.value}: set"
    else:
        message = f"study_type is {was.value}, but the abstract names {', '.join(named)}"
    return [Issue(code=IssueCode.STUDY_TYPE, severity="warning", message=message)]
