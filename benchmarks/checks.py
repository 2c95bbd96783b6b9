"""Cost of checking one answer: every rule vs the lexical rules alone, on real abstracts.

    .venv/bin/python benchmarks/checks.py [--n 200]

Each abstract's answer is its own results and conclusions sentences (5-10 findings, like a real
answer). Reports ms per abstract for all rules and for grounding only (the baseline, measured
in the same run), and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from keyfindings import checks
from keyfindings.evals.splits import labelled_rows
from keyfindings.schema import Finding, KeyFindings, StudyType
from keyfindings.sentences import split_sentences

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "pubmedqa_dev.jsonl"


def _answer(sections: dict[str, str]) -> KeyFindings:
    def findings(text: str) -> list[Finding]:
        return [Finding(text=s.text) for s in split_sentences(text)][:5]

    return KeyFindings(
        study_type=StudyType.OTHER,
        methodology=findings(sections.get("methods", "")),
        results=findings(sections.get("results", "")),
        significance=findings(sections.get("conclusions", "")),
    )


def _time(rows: list, repeat: int) -> float:
    best = []
    for _ in range(repeat):
        start = time.perf_counter()
        for paper, sections in rows:
            checks.check_findings(paper, _answer(sections))
        best.append((time.perf_counter() - start) / len(rows) * 1000)
    return min(best)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows = list(labelled_rows(DATA))[: args.n]
    findings = statistics.mean(
        sum(len(_answer(s).section(n)) for n in ("methodology", "results", "significance"))
        for _, s in rows
    )
    every = _time(rows, args.repeat)
    saved = checks.FINDING_RULES
    checks.FINDING_RULES = saved[:4]  # the lexical rules: lengths, numbers, grounding, citations
    try:
        lexical = _time(rows, args.repeat)
    finally:
        checks.FINDING_RULES = saved
    print(f"{len(rows)} abstracts, {findings:.1f} findings each")
    print(f"all rules:     {every:.2f} ms per abstract")
    print(f"lexical only:  {lexical:.2f} ms per abstract (baseline, same run)")
    print(f"ratio:         {every / lexical:.2f}x; faithfulness adds {every - lexical:.2f} ms")


if __name__ == "__main__":
    main()
