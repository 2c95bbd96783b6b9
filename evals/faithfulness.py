"""The faithfulness gate: run the mutation suite over labelled PubMed abstracts and check rates.

    .venv/bin/python evals/faithfulness.py                       # ../shared/data, both splits
    .venv/bin/python evals/faithfulness.py --split dev --examples 3

Exit 0 when every mutation kind is flagged at >= --min-flag, faithful sentences at <= --max-faithful
and paraphrases at <= --max-paraphrase on the chosen split(s); 100 when a gate fails (the eval-gate
exit code); 2 on a usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from keyfindings.evals.mutations import Tally, run, table
from keyfindings.evals.splits import labelled_rows

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "pubmedqa_dev.jsonl"


def _gates(tally: Tally, args: argparse.Namespace) -> list[str]:
    failures = []
    for kind in tally.tried:
        rate, family = tally.rate(kind), tally.family[kind]
        if family == "mutation" and rate < args.min_flag:
            failures.append(f"{kind}: flagged {rate:.3f} < {args.min_flag}")
    if tally.family_rate("faithful") > args.max_faithful:
        failures.append(f"faithful: flagged {tally.family_rate('faithful'):.3f}")
    if tally.family_rate("paraphrase") > args.max_paraphrase:
        failures.append(f"paraphrase: flagged {tally.family_rate('paraphrase'):.3f}")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--split", choices=["dev", "heldout", "all"], default="all")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-flag", type=float, default=0.95)
    parser.add_argument("--max-faithful", type=float, default=0.02)
    parser.add_argument("--max-paraphrase", type=float, default=0.05)
    parser.add_argument("--examples", type=int, default=0, help="print N surprises per kind")
    parser.add_argument("--json", type=Path, help="also write the counts as JSON here")
    args = parser.parse_args(argv)
    if not args.data.is_file():
        parser.error(f"no data file at {args.data}")
    failures: list[str] = []
    splits = ["dev", "heldout"] if args.split == "all" else [args.split]
    report = {}
    for split in splits:
        started = time.perf_counter()
        tally = run(labelled_rows(args.data, split), seed=args.seed)
        seconds = time.perf_counter() - started
        print(f"\n## {split} split ({seconds:.1f} s)\n\n{table(tally)}")
        print(
            f"\nfaithful falsely flagged {tally.family_rate('faithful'):.3f}; "
            f"paraphrases {tally.family_rate('paraphrase'):.3f}"
        )
        for kind, examples in tally.examples.items():
            for variant, issues in examples[: args.examples]:
                print(f"\n[{kind}] {variant.original}\n  -> {variant.text}")
                for issue in issues:
                    print(f"  ! {issue.code}: {issue.message}")
        failures += [f"{split}: {f}" for f in _gates(tally, args)]
        report[split] = {"tried": tally.tried, "flagged": tally.hits, "family": tally.family}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    for failure in failures:
        print(f"GATE FAILED {failure}", file=sys.stderr)
    return 100 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
