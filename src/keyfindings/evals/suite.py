"""Eval suites: prompts × models × cases, shared expectations and gates, from a YAML file.

    name: default
    prompts: [key_findings_compact@v1, key_findings@v1]
    models: [{label: embedded, backend: local}]
    cases: [evals/cases/handwritten.jsonl, {path: ../shared/data/pubmedqa_dev.jsonl, limit: 50}]
    baseline: true          # a lead-sentences row that needs no model
    gates: {schema_valid_rate: ">= 1.0", unsupported_numbers_per_paper: "<= 0"}

Case files are JSONL: the paper's fields, plus optional ``sections`` (the authors' labelled
sections, used only for scoring, never shown to the model) and ``expect`` (checks for this case).
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from keyfindings.config import BackendName, ModelConfig
from keyfindings.errors import ConfigError, LoaderError
from keyfindings.evals.splits import split_of
from keyfindings.paper import Paper

_GATE = re.compile(r"\A\s*(>=|<=|==|>|<)\s*(-?\d+(?:\.\d+)?)\s*\Z")
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    ">": operator.gt,
    "<": operator.lt,
}


class ModelSpec(BaseModel):
    """One model column: a label and the same settings as the command line."""

    model_config = ConfigDict(extra="forbid")

    label: str
    backend: BackendName = "auto"
    base_url: str | None = None
    model: str | None = None
    model_path: str | None = None
    api_key: str | None = Field(None, exclude=True, repr=False)  # flags only; never in a file
    timeout: float = 300.0

    def config(self) -> ModelConfig:
        """As a ``ModelConfig`` (the API key comes from the environment, never the file)."""
        return ModelConfig(api_key=self.api_key, **self.model_dump(exclude={"label"}))


class CaseSource(BaseModel):
    """A JSONL file of cases, optionally only one split of it (``keyfindings.evals.splits``:
    ``heldout`` is what no rule or model was fitted on) and only its first ``limit`` cases."""

    model_config = ConfigDict(extra="forbid")

    path: str
    limit: int | None = Field(None, gt=0)
    split: Literal["dev", "heldout"] | None = None


class Suite(BaseModel):
    """A whole eval definition."""

    model_config = ConfigDict(extra="forbid")

    name: str
    prompts: list[str] = Field(min_length=1)
    models: list[ModelSpec] = Field(default_factory=lambda: [ModelSpec(label="default")])
    cases: list[CaseSource | str] = Field(min_length=1)
    baseline: bool = True
    concurrency: int = Field(4, gt=0)
    gates: dict[str, str] = Field(default_factory=dict)

    def sources(self) -> list[CaseSource]:
        """Case sources with plain strings expanded."""
        return [CaseSource(path=c) if isinstance(c, str) else c for c in self.cases]

    def check_gates(self, metrics: Collection[str] = ()) -> None:
        """Fail before anything runs on a gate that cannot be parsed or names no metric (one
        of ``metrics``, when given)."""
        for metric, rule in self.gates.items():
            if not _GATE.match(rule):
                raise ConfigError(f"gate {metric}: {rule!r} is not like '>= 0.9'")
            if metrics and metric not in metrics:
                raise ConfigError(
                    f"gate {metric}: no such metric (known: {', '.join(sorted(metrics))})"
                )


_GATE_FLAG = re.compile(r"\A\s*(\w+)\s*=?\s*((?:>=|<=|==|>|<)\s*-?\d+(?:\.\d+)?)\s*\Z")


def parse_gate(text: str) -> tuple[str, str]:
    """``"ok_rate>=0.9"`` (or ``"ok_rate=>= 0.9"``) → ``("ok_rate", ">=0.9")``."""
    match = _GATE_FLAG.match(text)
    if match is None:
        raise ConfigError(f"gate {text!r} is not like 'ok_rate>=0.9'")
    return match.group(1), match.group(2)


def gate_passes(value: float | None, rule: str) -> bool:
    """Whether a metric value satisfies a rule such as ``">= 0.95"`` (None never does)."""
    match = _GATE.match(rule)
    if match is None:
        raise ConfigError(f"bad gate rule {rule!r}")
    return value is not None and _OPS[match.group(1)](value, float(match.group(2)))


def load_suite(path: Path) -> Suite:
    """Read and validate a suite file."""
    try:
        suite = Suite.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    except (yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"{path}: not a valid suite: {exc}") from None
    suite.check_gates()
    return suite


@dataclass
class Case:
    """A paper to summarise, with what scoring may know about it."""

    paper: Paper
    sections: dict[str, str] | None
    expect: dict[str, Any]
    source: str
    labels: tuple[str, ...] = ()  # the authors' headings, in order


def load_cases(source: CaseSource, base: Path) -> list[Case]:
    """Cases from a JSONL file; the path is tried as given, then relative to ``base``."""
    path = Path(source.path)
    if not path.exists() and (base / path).exists():
        path = base / path
    if not path.exists():
        raise LoaderError(f"{source.path}: no such case file")
    cases: list[Case] = []
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, 1):
            if source.limit is not None and len(cases) >= source.limit:
                break
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise LoaderError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
            sections = record.pop("sections", None)
            expect = record.pop("expect", {})
            labels = tuple(str(x) for x in record.pop("section_labels", None) or ())
            for extra in ("sections_other", "source"):
                record.pop(extra, None)
            paper = Paper.from_dict(record, where=f"{path}:{lineno}")
            if source.split is None or split_of(paper.id) == source.split:
                cases.append(Case(paper, sections, expect, f"{path.name}:{lineno}", labels))
    return cases
