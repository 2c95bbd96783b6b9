"""The output contract: ``KeyFindings`` inside a ``Result`` envelope, and the answer formats a
model may be asked for.

The stored schema is versioned (``SCHEMA_VERSION``) and hashed into the cache key, so changing it
can never serve an old shape. A model never writes ``KeyFindings`` directly: it writes one of the
``ANSWER_FORMATS``, which keyfindings converts, grounds and checks.
"""

from __future__ import annotations

import hashlib
import json
import re
from abc import abstractmethod
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from keyfindings.sentences import split_sentences

SCHEMA_VERSION = "1"  # the answer formats; Result fields are also hashed into the key
SECTIONS = ("methodology", "results", "significance", "limitations")


class StudyType(StrEnum):
    """Closed set of study designs; "other" when none fits."""

    RANDOMIZED_CONTROLLED_TRIAL = "randomized_controlled_trial"
    COHORT = "cohort"
    CASE_CONTROL = "case_control"
    CROSS_SECTIONAL = "cross_sectional"
    CASE_REPORT_OR_SERIES = "case_report_or_series"
    SYSTEMATIC_REVIEW_OR_META_ANALYSIS = "systematic_review_or_meta_analysis"
    NARRATIVE_REVIEW = "narrative_review"
    ANIMAL = "animal"
    IN_VITRO = "in_vitro"
    COMPUTATIONAL_OR_MODELLING = "computational_or_modelling"
    QUALITATIVE = "qualitative"
    OTHER = "other"


class Finding(BaseModel):
    """One claim. ``evidence``: sentence numbers that support it, as computed by alignment;
    ``cited``: what the model itself cited (a hint, checked against ``evidence``)."""

    model_config = ConfigDict(extra="forbid")

    text: str
    evidence: list[int] = []
    cited: list[int] = []


class KeyFindings(BaseModel):
    """The structured insight. An empty section means "not reported in the abstract"."""

    model_config = ConfigDict(extra="forbid")

    study_type: StudyType
    methodology: list[Finding]
    results: list[Finding]
    significance: list[Finding]
    limitations: list[Finding] = []

    def section(self, name: str) -> list[Finding]:
        """The findings of one section by name (one of ``SECTIONS``)."""
        findings: list[Finding] = getattr(self, name)
        return findings


class IssueCode(StrEnum):
    """Every problem a check or the pipeline can report (written by checks, read by metrics)."""

    INVALID_JSON = "invalid_json"
    SCHEMA = "schema"
    TRUNCATED = "truncated"
    TOO_LONG = "too_long"
    TOO_SHORT = "too_short"
    UNSUPPORTED_NUMBER = "unsupported_number"
    UNGROUNDED = "ungrounded"
    BAD_CITATION = "bad_citation"
    CITATION_MISMATCH = "citation_mismatch"
    EMPTY_SECTION = "empty_section"
    TOO_MANY = "too_many"
    REPEATED = "repeated"
    EMPTY_ANSWER = "empty_answer"
    # meaning: the finding says something other than its evidence
    CONTRADICTS = "contradicts"
    UNSTATED_DIRECTION = "unstated_direction"
    OVERSTATED = "overstated"
    CERTAINTY_ADDED = "certainty_added"
    MISPLACED_NUMBER = "misplaced_number"
    SWAPPED = "swapped"
    SCOPE_DROPPED = "scope_dropped"
    # place: the right content in the right field
    WRONG_SECTION = "wrong_section"
    MOVED = "moved"
    FILLED = "filled"
    COMPLETED = "completed"
    REMOVED_LIMITATION = "removed_limitation"
    FRAGMENT = "fragment"
    STUDY_TYPE = "study_type"
    # a finding that failed and was kept from readers
    WITHHELD = "withheld"
    REASK_NEEDED = "reask_needed"
    # input and output hygiene
    MARKUP = "markup"
    INSTRUCTION_IN_ABSTRACT = "instruction_in_abstract"


class Issue(BaseModel):
    """A problem a check found. Errors trigger a re-ask and, if they persist, a flagged result;
    warnings are reported and do not. ``text`` keeps a withheld finding's words."""

    code: IssueCode
    message: str
    severity: Literal["error", "warning"] = "error"
    section: str | None = None
    index: int | None = None
    text: str | None = None


class Usage(BaseModel):
    """Tokens of every answer and every request made: transient failures and re-asks included.

    ``attempts`` counts requests sent (failed ones too); ``reasks`` the times the model was asked
    again because its answer failed the checks.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    attempts: int = 0
    reasks: int = 0
    cost_usd: float | None = None


class PromptRef(BaseModel):
    """Which prompt produced a result: ``name@version`` plus the file's sha256."""

    name: str
    version: int
    sha256: str

    @property
    def ref(self) -> str:
        """``name@vN``, the form used on the command line and in cache tags."""
        return f"{self.name}@v{self.version}"


class RawAnswer(BaseModel):
    """One answer exactly as the model wrote it: kept so a change to the checks can re-check
    stored answers instead of paying for them again."""

    text: str
    finish_reason: str | None = None
    latency_ms: float = 0.0  # what this answer took to get, retries included


class Result(BaseModel):
    """The envelope every caller gets: findings plus provenance, status, issues and usage.

    ``findings`` holds only findings that passed the checks; ``withheld`` counts those that did
    not (their text and reasons are ``issues`` with code ``withheld``). ``answers`` are the raw
    answers of every attempt; ``checks_version`` the checks they were judged by.
    """

    paper_id: str
    status: Literal["ok", "flagged"]
    findings: KeyFindings | None
    issues: list[Issue] = []
    prompt: PromptRef
    model: str
    backend: str
    model_digest: str | None = None
    schema_version: str = SCHEMA_VERSION
    usage: Usage = Field(default_factory=Usage)
    withheld: int = 0
    answers: list[RawAnswer] = []
    checks_version: str = ""
    latency_ms: float = 0.0
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    cached: bool = False


# ---- answer formats: what a model is asked to write --------------------------------------------


_NOTHING = re.compile(
    r"\A\W*(none|n/?a|nil|not (applicable|reported|stated|mentioned|given|available)"
    r"( in the abstract)?)\W*\Z",
    re.I,
)
# "No limitations stated in the abstract.", "The study did not report any limitations." and the
# like: the model saying a section is empty, in a sentence. (Measured: the 1.5B model writes one
# for limitations on about one abstract in four, and it failed grounding every time.)
_NOTHING_SENTENCE = re.compile(
    r"\b(no|not|none|any)\b.*\b(limitations?|the abstract)\b"
    r"|\blimitations?\b.*\b(not|none)\b",
    re.I,
)
_REPORTING = re.compile(r"\b(stat|report|mention|giv|describ|provid|specif|availab)\w*", re.I)
_NOTHING_MAX_WORDS = 14
# Free-text study types that models write, mapped to the closed set (first match wins).
_STUDY_TYPE_WORDS = [
    (re.compile(r"meta-?analy|systematic", re.I), StudyType.SYSTEMATIC_REVIEW_OR_META_ANALYSIS),
    (re.compile(r"random", re.I), StudyType.RANDOMIZED_CONTROLLED_TRIAL),
    (re.compile(r"case[- _]?control", re.I), StudyType.CASE_CONTROL),
    (re.compile(r"cohort|longitudinal|prospective|retrospective", re.I), StudyType.COHORT),
    (re.compile(r"cross[- _]?sectional|survey", re.I), StudyType.CROSS_SECTIONAL),
    (re.compile(r"case[- _](report|series)", re.I), StudyType.CASE_REPORT_OR_SERIES),
    (re.compile(r"review", re.I), StudyType.NARRATIVE_REVIEW),
    (re.compile(r"animal|mouse|mice|\brats?\b", re.I), StudyType.ANIMAL),
    (re.compile(r"in[- _]vitro|cell", re.I), StudyType.IN_VITRO),
    (re.compile(r"comput|model|simulat", re.I), StudyType.COMPUTATIONAL_OR_MODELLING),
    (re.compile(r"qualitative|interview|focus group", re.I), StudyType.QUALITATIVE),
]


def says_nothing(text: str) -> bool:
    """True for "None.", "N/A", "Not reported in the abstract" and the like."""
    if not text.strip() or _NOTHING.match(text):
        return True
    short = len(text.split()) <= _NOTHING_MAX_WORDS and not any(c.isdigit() for c in text)
    return short and bool(_NOTHING_SENTENCE.search(text)) and bool(_REPORTING.search(text))


def coerce_study_type(value: object) -> object:
    """Map free text ("randomised trial", "review") onto the closed set; leave the rest."""
    if not isinstance(value, str) or value in StudyType._value2member_map_:
        return value
    for pattern, study_type in _STUDY_TYPE_WORDS:
        if pattern.search(value):
            return study_type.value
    return value


class AnswerFormat(BaseModel):
    """What a prompt asks the model to write (its ``answer_format``); each converts itself to
    ``KeyFindings``, which keyfindings then grounds and checks."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("study_type", mode="before", check_fields=False)
    @classmethod
    def _study_type(cls, value: object) -> object:
        return coerce_study_type(value)

    @abstractmethod
    def to_findings(self) -> KeyFindings:
        """Convert to ``KeyFindings`` (evidence is computed later, by the checks)."""


class CitedFinding(BaseModel):
    """A finding as a capable model writes it: text plus the sentence numbers it cites."""

    model_config = ConfigDict(extra="forbid")

    text: str
    evidence: list[int]


class CitedAnswer(AnswerFormat):
    """For capable models: a list of short findings per section, each citing sentences."""

    study_type: StudyType
    methodology: list[CitedFinding]
    results: list[CitedFinding]
    significance: list[CitedFinding]
    limitations: list[CitedFinding]

    def to_findings(self) -> KeyFindings:
        """Keep the model's citations as ``cited``; evidence is computed by alignment."""
        sections = {
            name: [
                Finding(text=f.text, cited=f.evidence)
                for f in getattr(self, name)
                if not says_nothing(f.text)
            ]
            for name in SECTIONS
        }
        return KeyFindings(study_type=self.study_type, **sections)


class TextAnswer(AnswerFormat):
    """For small models, which cite badly: 1-3 plain sentences per section ("" if none)."""

    study_type: StudyType
    methodology: str
    results: str
    significance: str
    limitations: str

    def to_findings(self) -> KeyFindings:
        """Each sentence of a section becomes one finding."""
        sections = {
            name: [
                Finding(text=s.text)
                for s in split_sentences(getattr(self, name))
                if not says_nothing(s.text)
            ]
            for name in SECTIONS
        }
        return KeyFindings(study_type=self.study_type, **sections)


def _inline_refs(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            return _inline_refs(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
        return {
            k: _inline_refs(v, defs)
            for k, v in node.items()
            if k not in ("$defs", "title", "description")
        }
    if isinstance(node, list):
        return [_inline_refs(v, defs) for v in node]
    return node


def strict_json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """A self-contained JSON schema (no $ref, all fields required, no extra keys).

    Inlined because llama.cpp's grammar converter and some servers handle $ref poorly.
    """
    schema = model.model_json_schema()
    inlined: dict[str, Any] = _inline_refs(schema, schema.get("$defs", {}))
    return inlined


ANSWER_FORMATS: dict[str, type[AnswerFormat]] = {
    "cited_findings": CitedAnswer,
    "text_sections": TextAnswer,
}


def schema_sha256() -> str:
    """Hash of the stored output schema: part of every cache key."""
    text = json.dumps(Result.model_json_schema(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
