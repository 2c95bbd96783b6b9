"""Scoring one summary: validity, grounding, numeric faithfulness, section alignment, length.

Pure functions over a ``Paper``, its findings and (when the abstract is labelled) the authors' own
sections, so they can be tested on hand-made predictions with known answers.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from keyfindings.checks import FAITHFULNESS
from keyfindings.checks.placement import expected_study_types
from keyfindings.numbers import extract_numbers, unsupported_numbers
from keyfindings.paper import Paper
from keyfindings.roles import role_of_label, roles_named
from keyfindings.schema import IssueCode, KeyFindings, Result

# Which labelled section each output field should match.
TARGETS = {"methodology": "methods", "results": "results", "significance": "conclusions"}
REFERENCE_SECTIONS = ("background", "methods", "results", "conclusions")
_TOKEN = re.compile(r"[^\W_]+")


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens, as used by the token-F1 metric."""
    return _TOKEN.findall(text.lower())


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD-style token F1 (bag of words); 0 when either side is empty."""
    pred, ref = Counter(tokens(prediction)), Counter(tokens(reference))
    overlap = sum((pred & ref).values())
    if not overlap:
        return 0.0
    precision, recall = overlap / sum(pred.values()), overlap / sum(ref.values())
    return 2 * precision * recall / (precision + recall)


def reference_sections(sections: Mapping[str, str]) -> dict[str, str]:
    """The labelled sections to align with; objective counts as background."""
    background = " ".join(
        s for s in (sections.get("background", ""), sections.get("objective", "")) if s
    )
    out = {
        "background": background,
        "methods": sections.get("methods", ""),
        "results": sections.get("results", ""),
        "conclusions": sections.get("conclusions", ""),
    }
    return {name: text for name, text in out.items() if text.strip()}


@dataclass
class CaseScore:
    """Metrics of one case in one cell; None where a metric does not apply."""

    status: str
    findings: int = 0
    ungrounded: int = 0
    citations: int = 0
    bad_citations: int = 0
    numbers: int = 0
    unsupported_numbers: int = 0
    withheld: int = 0
    unfaithful: int = 0
    results_numbers_covered: float | None = None
    words: int = 0
    section_f1: dict[str, float] = field(default_factory=dict)
    section_correct: dict[str, bool] = field(default_factory=dict)
    # Per field: (findings whose evidence has the authors' right section, findings scored).
    role_hits: dict[str, tuple[int, int]] = field(default_factory=dict)
    study_type_agrees: bool | None = None
    expectation_failures: list[str] = field(default_factory=list)


def _section_text(findings: KeyFindings, name: str) -> str:
    return " ".join(f.text for f in findings.section(name))


# The authors' sections each field's evidence should come from.
ROLE_TARGETS = {
    "methodology": {"methods", "objective"},
    "results": {"results"},
    "significance": {"conclusions"},
}


def _squash(text: str) -> str:
    return " ".join("".join(c for c in text.lower() if c.isalnum() or c.isspace()).split())


# A sentence that states the study's question or aim: methodology may draw on a background
# sentence for that (the question asked), not for the background itself.
_ASKS = re.compile(
    r"^to (test|determine|evaluate|assess|examine|investigate|compare|describe|identify|explore"
    r"|establish|analy[sz]e|report|measure|quantify|characteri[sz]e|clarify|estimate|develop)\b"
    r"|\b(this|the present|the current|our) (study|trial|analysis|review|work|paper)\b[^.]*?"
    r"\b(aim|design|sought|investigat|examin|evaluat|assess|compar|test|determin|explor)"
    r"|\b(aims?|objectives?|purposes?|goals?) (of (this|the present|our)|(was|is|were|are) to)\b"
    r"|\bwe (aimed|sought|set out|wanted|asked|hypothesi[sz]ed)\b",
    re.I,
)


def gold_sections(
    sentences: list[str], sections: Mapping[str, str], labels: Sequence[str] = ()
) -> list[frozenset[str]]:
    """The authors' sections each abstract sentence counts for (found by its text; empty if
    not found). A heading that names two parts ("METHODS AND RESULTS", filed under results)
    counts for both; a background sentence that states the question counts as objective."""
    refs = {name: _squash(text) for name, text in sections.items() if text}
    named: dict[str, set[str]] = {}
    for label in labels:
        first = role_of_label(label)
        if first is not None:
            named.setdefault(first.value, set()).update(r.value for r in roles_named(label))
    gold: list[frozenset[str]] = []
    for sentence in sentences:
        key = _squash(sentence)
        home = next((name for name, ref in refs.items() if key and key in ref), None)
        if home is None:
            gold.append(frozenset())
            continue
        found = {home} | named.get(home, set())
        if home == "background" and _ASKS.search(sentence.strip()):
            found.add("objective")
        gold.append(frozenset(found))
    return gold


def _score_roles(
    sentences: list[str],
    findings: KeyFindings,
    sections: Mapping[str, str],
    labels: Sequence[str],
    score: CaseScore,
) -> None:
    gold = gold_sections(sentences, sections, labels)
    for field_name, targets in ROLE_TARGETS.items():
        hits = total = 0
        for finding in findings.section(field_name):
            known = [gold[n - 1] for n in finding.evidence if gold[n - 1]]
            if known:
                total += 1
                hits += any(g & targets for g in known)
        if total:
            score.role_hits[field_name] = (hits, total)


def score_alignment(
    findings: KeyFindings,
    sections: Mapping[str, str],
    score: CaseScore,
    paper_sentences: list[str] | None = None,
    labels: Sequence[str] = (),
) -> None:
    """Token F1 against the target section, whether the target is the closest section, and
    whether each field's evidence comes from its section."""
    paper_sentences = paper_sentences or []
    refs = reference_sections(sections)
    for field_name, target in TARGETS.items():
        text = _section_text(findings, field_name)
        if target not in refs or not text:
            continue
        f1s = {name: token_f1(text, ref) for name, ref in refs.items()}
        score.section_f1[field_name] = f1s[target]
        score.section_correct[field_name] = max(f1s, key=f1s.__getitem__) == target
    _score_roles(paper_sentences, findings, sections, labels, score)
    results_ref = sections.get("results", "")
    wanted = set(extract_numbers(results_ref))
    if wanted:
        got = set(extract_numbers(_section_text(findings, "results")))
        score.results_numbers_covered = len(wanted & got) / len(wanted)


def check_expectations(
    paper: Paper, findings: KeyFindings | None, expect: Mapping[str, object]
) -> list[str]:
    """Case-specific expectations from the case file; returns what failed."""
    failures: list[str] = []
    if findings is None:
        return ["no findings to check"] if expect else []
    text = " ".join(
        f.text
        for name in ("methodology", "results", "significance", "limitations")
        for f in findings.section(name)
    )
    if "study_type" in expect and findings.study_type.value not in _as_list(expect["study_type"]):
        failures.append(f"study_type {findings.study_type.value}, expected {expect['study_type']}")
    if expect.get("results_empty") and findings.results:
        failures.append("results should be empty (the abstract reports none)")
    if expect.get("no_numbers") and extract_numbers(text):
        failures.append(f"numbers where the abstract has none: {extract_numbers(text)}")
    for phrase in _as_list(expect.get("not_contains", [])):
        if phrase.lower() in text.lower():
            failures.append(f"output contains {phrase!r}")
    for phrase in _as_list(expect.get("contains", [])):
        if phrase.lower() not in text.lower():
            failures.append(f"output lacks {phrase!r}")
    return failures


def _as_list(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def score_case(
    paper: Paper,
    result: Result | None,
    *,
    sections: Mapping[str, str] | None = None,
    expect: Mapping[str, object] | None = None,
    labels: Sequence[str] = (),
) -> CaseScore:
    """All metrics for one case; ``result`` None means the call failed."""
    if result is None:
        return CaseScore(status="failed")
    score = CaseScore(status=result.status)
    codes = Counter(i.code for i in result.issues)
    findings = result.findings
    if findings is not None:
        every = [
            f
            for name in ("methodology", "results", "significance", "limitations")
            for f in findings.section(name)
        ]
        score.findings = len(every)
        score.ungrounded = codes[IssueCode.UNGROUNDED]
        score.citations = sum(1 for f in every if f.cited)
        score.bad_citations = codes[IssueCode.BAD_CITATION] + codes[IssueCode.CITATION_MISMATCH]
        # Withheld findings were never shown, but the prompt still wrote them: they count.
        withheld = [i for i in result.issues if i.code == IssueCode.WITHHELD and i.text]
        score.withheld = len(withheld)
        score.ungrounded += sum("ungrounded" in i.message.split(":")[0] for i in withheld)
        score.unfaithful = sum(codes[c] for c in FAITHFULNESS) + sum(
            any(c.value in i.message.split(":")[0] for c in FAITHFULNESS) for i in withheld
        )
        for text in [f.text for f in every] + [i.text or "" for i in withheld]:
            score.numbers += len(extract_numbers(text))
            score.unsupported_numbers += len(unsupported_numbers(text, paper.numbers))
        score.words = sum(len(f.text.split()) for f in every)
        if sections:
            score_alignment(findings, sections, score, [s.text for s in paper.sentences], labels)
        named = expected_study_types(paper)
        if named:
            # The model's own answer: a study type the checks had to set does not agree.
            corrected = any(i.code == IssueCode.STUDY_TYPE for i in result.issues)
            score.study_type_agrees = findings.study_type in named and not corrected
    score.expectation_failures = check_expectations(paper, findings, expect or {})
    return score
