"""Running a suite: every prompt × model cell over every case, plus a no-model baseline row.

Answers come through the ordinary ``Summarizer`` and its cache, so a re-run is cheap and scores
exactly what the button and batch runs would serve.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from keyfindings.checks import errors_only, fill_evidence
from keyfindings.config import make_backend
from keyfindings.errors import ConfigError
from keyfindings.evals.metrics import ROLE_TARGETS, CaseScore, score_case
from keyfindings.evals.suite import Case, CaseSource, Suite, gate_passes, load_cases
from keyfindings.paper import Paper
from keyfindings.schema import Finding, KeyFindings, PromptRef, Result, StudyType, Usage
from keyfindings.store import ResultStore
from keyfindings.summarizer import Summarizer

log = logging.getLogger("keyfindings")

BASELINE = "baseline (lead sentences)"


def _score(case: Case, result: Result | None) -> CaseScore:
    return score_case(
        case.paper, result, sections=case.sections, expect=case.expect, labels=case.labels
    )


@dataclass
class Outcome:
    """One case in one cell."""

    case: Case
    result: Result | None
    error: str | None
    score: CaseScore


@dataclass
class Cell:
    """One prompt × model column and its outcomes."""

    label: str
    prompt: str
    model: str
    outcomes: list[Outcome] = field(default_factory=list)

    def metrics(self) -> dict[str, float | None]:
        """The cell's aggregate metrics (the rows of the report)."""
        return aggregate(self.outcomes)


def lead_baseline(paper: Paper) -> KeyFindings:
    """No model: the first two sentences as methodology, the middle two as results, the last as
    significance. The floor every prompt must beat."""
    sentences = [s.text for s in paper.sentences]
    n = len(sentences)
    middle = n // 2
    findings = KeyFindings(
        study_type=StudyType.OTHER,
        methodology=[Finding(text=t) for t in sentences[: min(2, n)]],
        results=[Finding(text=t) for t in sentences[max(0, middle - 1) : middle + 1]],
        significance=[Finding(text=sentences[-1])] if n else [],
    )
    fill_evidence(paper, findings)
    return findings


def _baseline_result(paper: Paper) -> Result:
    findings = lead_baseline(paper)
    return Result(
        paper_id=paper.id,
        status="ok",
        findings=findings,
        prompt=PromptRef(name="lead", version=0, sha256=""),
        model="lead",
        backend="none",
        usage=Usage(),
    )


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 4) if values else None


def _share(scores: list[CaseScore], field_name: str) -> float | None:
    hits = sum(s.role_hits.get(field_name, (0, 0))[0] for s in scores)
    total = sum(s.role_hits.get(field_name, (0, 0))[1] for s in scores)
    return round(hits / total, 4) if total else None


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def aggregate(outcomes: list[Outcome]) -> dict[str, float | None]:
    """Per-cell metrics from per-case scores."""
    scores = [o.score for o in outcomes]
    n = max(len(scores), 1)
    findings = sum(s.findings for s in scores)
    numbers = sum(s.numbers for s in scores)
    results = [o.result for o in outcomes if o.result is not None]
    fresh = [r.latency_ms for r in results if r.backend != "none"]
    usage_cost = [r.usage.cost_usd for r in results if r.usage.cost_usd is not None]
    return {
        "cases": len(scores),
        "schema_valid_rate": round(
            sum(o.result is not None and o.result.findings is not None for o in outcomes) / n, 4
        ),
        "ok_rate": round(sum(s.status == "ok" for s in scores) / n, 4),
        "flagged": sum(s.status == "flagged" for s in scores),
        "failed": sum(s.status == "failed" for s in scores),
        "grounded_rate": round(1 - sum(s.ungrounded for s in scores) / findings, 4)
        if findings
        else None,
        "citation_error_rate": round(
            sum(s.bad_citations for s in scores) / max(sum(s.citations for s in scores), 1), 4
        ),
        "numeric_faithfulness": round(1 - sum(s.unsupported_numbers for s in scores) / numbers, 4)
        if numbers
        else None,
        "unsupported_numbers_per_paper": round(sum(s.unsupported_numbers for s in scores) / n, 4),
        "unfaithful_per_paper": round(sum(s.unfaithful for s in scores) / n, 4),
        "withheld": sum(s.withheld for s in scores),
        "section_accuracy": _mean([float(v) for s in scores for v in s.section_correct.values()]),
        "token_f1": _mean([v for s in scores for v in s.section_f1.values()]),
        **{f"role_accuracy_{name}": _share(scores, name) for name in ROLE_TARGETS},
        "study_type_agreement": _mean(
            [float(s.study_type_agrees) for s in scores if s.study_type_agrees is not None]
        ),
        "results_number_coverage": _mean(
            [s.results_numbers_covered for s in scores if s.results_numbers_covered is not None]
        ),
        "words_per_paper": _mean([float(s.words) for s in scores]),
        "expectation_failures": sum(len(s.expectation_failures) for s in scores),
        "latency_p50_ms": _percentile(fresh, 0.5),
        "latency_p95_ms": _percentile(fresh, 0.95),
        "prompt_tokens": sum(r.usage.prompt_tokens for r in results),
        "completion_tokens": sum(r.usage.completion_tokens for r in results),
        "cost_usd": round(sum(usage_cost), 6) if usage_cost else None,
    }


async def _run_cell(
    summarizer: Summarizer,
    cases: list[Case],
    concurrency: int,
    on_case: Callable[[Outcome], None],
) -> list[Outcome]:
    gate = asyncio.Semaphore(concurrency)

    async def one(case: Case) -> Outcome:
        async with gate:
            try:
                # When only the checks changed, judge the stored answers again: no model call.
                result: Result | None = None
                if summarizer.cached(case.paper) is None:
                    result = await summarizer.arecheck(case.paper, stale_only=True)
                if result is None:
                    result = await summarizer.asummarize(case.paper)
                error = None
            except Exception as exc:  # scored as a failure, with its message in the report
                result, error = None, f"{type(exc).__name__}: {exc}"
        outcome = Outcome(
            case,
            result,
            error,
            _score(case, result),
        )
        on_case(outcome)
        return outcome

    try:
        return list(await asyncio.gather(*(one(c) for c in cases)))
    finally:
        await summarizer.aclose()


@dataclass
class EvalRun:
    """Everything one eval produced."""

    suite: Suite
    cases: list[Case]
    cells: list[Cell]

    def gate_failures(self) -> list[str]:
        """Gates that a model cell failed (the baseline row is not gated)."""
        failures = []
        for cell in self.cells:
            if cell.label == BASELINE:
                continue
            metrics = cell.metrics()
            for metric, rule in self.suite.gates.items():
                if metric not in metrics:
                    failures.append(f"{cell.label}: unknown metric {metric!r} in gates")
                elif not gate_passes(metrics[metric], rule):
                    failures.append(f"{cell.label}: {metric} = {metrics[metric]} fails {rule}")
        return failures


def _present(sources: list[CaseSource], base: Path) -> list[CaseSource]:
    """The sources to read: a missing case file outside this checkout (shared data another
    machine may not have) is skipped with a note; a missing one inside it is an error."""
    kept = []
    for source in sources:
        path = Path(source.path)
        outside = path.is_absolute() or ".." in path.parts
        if outside and not path.exists() and not (base / path).exists():
            log.warning("eval: skipped %s: not on this machine", source.path)
            continue
        kept.append(source)
    if not kept:
        raise ConfigError("eval: none of the suite's case files is on this machine")
    return kept


def run_suite(
    suite: Suite,
    *,
    base: Path,
    cache: ResultStore | None = None,
    on_case: Callable[[Outcome], None] | None = None,
) -> EvalRun:
    """Run every cell; ``on_case(outcome)`` is called as each case finishes."""
    suite.check_gates(METRICS)
    cases = [
        case for source in _present(suite.sources(), base) for case in load_cases(source, base)
    ]
    report = on_case or (lambda outcome: None)
    cells: list[Cell] = []
    if suite.baseline:
        baseline = Cell(BASELINE, "lead", "none")
        for case in cases:
            result = _baseline_result(case.paper)
            baseline.outcomes.append(
                Outcome(
                    case,
                    result,
                    None,
                    _score(case, result),
                )
            )
        cells.append(baseline)
    for spec in suite.models:
        backend = make_backend(spec.config())
        for prompt in suite.prompts:
            summarizer = Summarizer(
                backend, prompt=prompt, cache=cache, use_cache=cache is not None
            )
            cell = Cell(f"{prompt} · {spec.label}", prompt, spec.label)
            cell.outcomes = asyncio.run(_run_cell(summarizer, cases, suite.concurrency, report))
            cells.append(cell)
    return EvalRun(suite, cases, cells)


def outcome_record(cell: Cell, outcome: Outcome) -> dict[str, Any]:
    """One line of the per-case JSONL."""
    return {
        "cell": cell.label,
        "case": outcome.case.source,
        "paper_id": outcome.case.paper.id,
        "score": asdict(outcome.score),
        "error": outcome.error,
        "result": outcome.result.model_dump(mode="json") if outcome.result else None,
        "errors": [i.message for i in errors_only(outcome.result.issues)] if outcome.result else [],
    }


# Every metric a cell reports (what gates may name).
METRICS = frozenset(aggregate([]))
