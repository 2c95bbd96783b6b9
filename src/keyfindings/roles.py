"""Each abstract sentence's role: background, objective, methods, results, conclusions,
limitation, or other.

Where the abstract is structured, its own labels decide ("METHODS:", PubMed ``Label``) and the
role is certain. Otherwise the shipped sentence-role model (``role_tagger``) decides, and the role
counts as certain only when the model is well ahead of the next-best role (a margin measured on
held-out abstracts: ~0.96 precise for results, ~0.99 for conclusions, ~0.92 for methods). A
sentence that states a limitation is a limitation whatever its section.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from keyfindings.paper import Paper
from keyfindings.role_tagger import shipped_model


class Role(StrEnum):
    """What a sentence does in its abstract."""

    BACKGROUND = "background"
    OBJECTIVE = "objective"
    METHODS = "methods"
    RESULTS = "results"
    CONCLUSIONS = "conclusions"
    LIMITATION = "limitation"
    OTHER = "other"


# Heading → role, first match wins (the same mapping the shared data used for its sections).
_LABELS = [
    (re.compile(r"LIMITATION|WEAKNESS"), Role.LIMITATION),
    (re.compile(r"RESULT|FINDING"), Role.RESULTS),
    (
        re.compile(r"CONCLUSION|INTERPRETATION|IMPLICATION|SIGNIFICANCE|DISCUSSION"),
        Role.CONCLUSIONS,
    ),
    (
        re.compile(
            r"METHOD|DESIGN|SETTING|PATIENT|PARTICIPANT|SUBJECT|INTERVENTION|MEASURE|MATERIAL"
            r"|OUTCOME|POPULATION|SAMPLE|PROCEDURE|DATA|SOURCE|SELECTION|EXTRACTION|SYNTHESIS"
        ),
        Role.METHODS,
    ),
    (re.compile(r"OBJECT|PURPOSE|AIM|GOAL|HYPOTHES|QUESTION"), Role.OBJECTIVE),
    (re.compile(r"BACKGROUND|INTRODUCTION|CONTEXT|RATIONALE|IMPORTANCE"), Role.BACKGROUND),
]
# A sentence that says what limits the study (not "limited data exist" in a background):
# explicit words decide alone; softer ones only in a sentence that is not results or methods.
_LIMITATION = re.compile(
    r"\b((main|major|key|important|potential|several|some|other|chief) limitations?"
    r"|limitations? (of|to|in) (this|the|our|these|such) (study|studies|trial|analys[ie]s|review"
    r"|work|findings|data|results)|(study|trial|analysis|review) (has|had|have) (several |some )?"
    r"limitations?|limited by|weakness(es)? of (this|the|our)|strengths and (limitations|weakness)"
    r"|(should|must|be) interpreted with caution|cannot be generali[sz]ed"
    r"|(may|might) not be generali[sz]able|not generali[sz]able)\b",
    re.I,
)
_SOFT_LIMITATION = re.compile(
    r"\b(small (sample|number of (patients|participants|subjects))|lack of (a )?control"
    r"|retrospective (nature|design)|selection bias|recall bias|single[- ](cent(er|re)|institution)"
    r"|short follow[- ]up|(is|was|were) limited|(may|might) not (extend|apply)|preliminary"
    r"|with caution|modest)\b",
    re.I,
)
# A sentence that reports what was found, in the words every field uses for it: never methods
# or background, whatever position and vocabulary suggest ("Regression analyses revealed that
# …", "Of 83 patients, 26 were found to have …").
_REPORTS_FINDING = re.compile(
    r"\b(we (found|observed|noted)|(was|were) found to|found that|revealed that"
    r"|(showed|demonstrated|indicated) that|(was|were) (significantly|not significantly)"
    r"|did not (differ|change|improve|reduce|increase)|no significant"
    r"|significant(ly)? (higher|lower|greater|more|less|increase|decrease|reduction|improvement"
    r"|difference|association|correlation))\b",
    re.I,
)
# Methods sentences state how significance was judged: they may hold "significant" and a p.
_STATES_METHOD = re.compile(
    r"\b(considered|defined|set at|level of significance|were (used|performed|calculated|"
    r"assessed|measured|compared|analy[sz]ed|evaluated|recorded|collected)|to (determine|assess|"
    r"evaluate|examine|investigate|compare|test))\b",
    re.I,
)
# Bump when the labels' mapping or the cues change (part of prompt cache keys).
ROLES_VERSION = "2"
# Model margin above which a tagged role counts as certain (measured on the held-out split).
CONFIDENT_MARGIN = 40.0


def role_of_label(label: str) -> Role | None:
    """The role a structured-abstract heading gives its sentences, if it names one."""
    for pattern, role in _LABELS:
        if pattern.search(label.upper()):
            return role
    return None


def roles_named(label: str) -> frozenset[Role]:
    """Every role a heading names: "METHODS AND RESULTS" is methods as much as results (the
    first match alone files it under results)."""
    return frozenset(role for pattern, role in _LABELS if pattern.search(label.upper()))


def states_limitation(text: str) -> bool:
    """Does the sentence state a limitation of the study?"""
    return bool(_LIMITATION.search(text) or _SOFT_LIMITATION.search(text))


@dataclass(frozen=True)
class SentenceRole:
    """One sentence's role, where it came from, and whether a check may rely on it."""

    role: Role
    source: str  # "label", "model" or "cue"
    certain: bool


class AbstractRoles:
    """The roles of a paper's sentences (computed once per distinct abstract, and cached: the
    prompt, the checks and withholding all ask for them)."""

    def __init__(self, paper: Paper) -> None:
        self.paper = paper

    @property
    def roles(self) -> list[SentenceRole]:
        """One ``SentenceRole`` per abstract sentence, in order."""
        return list(_roles(tuple((s.text, s.label) for s in self.paper.sentences)))

    def of(self, number: int) -> SentenceRole:
        """The role of sentence ``number`` (1-based, as cited)."""
        return self.roles[number - 1]


@lru_cache(maxsize=1024)
def _roles(sentences: tuple[tuple[str, str | None], ...]) -> tuple[SentenceRole, ...]:
    labelled = [role_of_label(label) if label else None for _, label in sentences]
    if len({r for r in labelled if r is not None}) < 2:
        # One heading alone ("AIM:" left in running text) would label every sentence after
        # it: only a structured abstract's labels are trusted.
        labelled = [None] * len(sentences)
    tagged = shipped_model().tag([text for text, _ in sentences])
    out = []
    for (text, _), label_role, guess in zip(sentences, labelled, tagged, strict=True):
        role = label_role or Role(guess.role)
        certain = label_role is not None or guess.margin >= CONFIDENT_MARGIN
        if (
            label_role is None
            and role == Role.METHODS
            and _REPORTS_FINDING.search(text)
            and not _STATES_METHOD.search(text)
        ):
            out.append(SentenceRole(Role.RESULTS, "cue", True))
        elif _LIMITATION.search(text) and role != Role.METHODS:
            out.append(SentenceRole(Role.LIMITATION, "cue", True))
        elif _SOFT_LIMITATION.search(text) and role not in (Role.RESULTS, Role.METHODS):
            out.append(SentenceRole(Role.LIMITATION, "cue", False))
        else:
            out.append(SentenceRole(role, "label" if label_role else "model", certain))
    return tuple(out)


def model_digest() -> str:
    """Identity of the role model and cue rules, for cache keys of prompts that show roles."""
    return f"{shipped_model().digest[:16]}/{ROLES_VERSION}"


def sentence_roles(paper: Paper) -> list[SentenceRole]:
    """Every abstract sentence's role, in order."""
    return AbstractRoles(paper).roles
