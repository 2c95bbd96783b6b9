"""Train the sentence-role model shipped as src/keyfindings/data/role_model.json.

    .venv/bin/python scripts/train_roles.py            # train on the dev split, report held-out
    .venv/bin/python scripts/train_roles.py --check    # only report the shipped model

Data: ../shared/data/pubmedqa_dev.jsonl, each abstract's own labelled sections (background,
objective, methods, results, conclusions) split into sentences, in that order. The split is
keyfindings.evals.splits (a hash of the paper id): the model sees only ``dev``; the figures are
measured on ``heldout``, against a position-only model trained the same way. Deterministic:
a fixed seed, a fixed number of epochs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from collections import Counter
from pathlib import Path

from keyfindings.evals.splits import labelled_rows
from keyfindings.role_tagger import ROLES, RoleModel, features, shipped_model
from keyfindings.sentences import split_sentences

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "pubmedqa_dev.jsonl"
OUT = ROOT / "src" / "keyfindings" / "data" / "role_model.json"
Sequence = tuple[list[str], list[int]]


def sequences(split: str) -> list[Sequence]:
    """(sentences, role indices) per abstract, sections in their usual order."""
    out = []
    for _, sections in labelled_rows(DATA, split):  # type: ignore[arg-type]
        sentences, roles = [], []
        for r, role in enumerate(ROLES):
            for s in split_sentences(sections.get(role) or ""):
                sentences.append(s.text)
                roles.append(r)
        if sentences:
            out.append((sentences, roles))
    return out


class Perceptron:
    """Averaged structured perceptron over (feature, role) and (role, role) weights.

    The live weights are kept in the shape ``RoleModel`` reads, so decoding during training
    copies nothing; ``u`` accumulates step-weighted updates for the average (w - u / c).
    """

    def __init__(self, keep: set[str] | None = None) -> None:
        k = len(ROLES)
        self.keep = keep
        self.live = RoleModel(
            {
                "roles": ROLES,
                "weights": {},
                "transitions": [[0.0] * k for _ in range(k)],
                "start": [0.0] * k,
            }
        )
        self.u_weights: dict[str, list[float]] = {}
        self.u_trans = [[0.0] * k for _ in range(k)]
        self.u_start = [0.0] * k
        self.c = 1

    def _feats(self, sentences: list[str], i: int) -> list[str]:
        feats = features(sentences, i)
        return feats if self.keep is None else [f for f in feats if f.split("=")[0] in self.keep]

    def model(self) -> RoleModel:
        """The averaged weights as a RoleModel."""
        c = self.c
        weights = {
            f: [w - u / c for w, u in zip(ws, self.u_weights[f], strict=True)]
            for f, ws in self.live.weights.items()
        }
        trans = [
            [w - u / c for w, u in zip(row, urow, strict=True)]
            for row, urow in zip(self.live.transitions, self.u_trans, strict=True)
        ]
        start = [w - u / c for w, u in zip(self.live.start, self.u_start, strict=True)]
        return RoleModel({"roles": ROLES, "weights": weights, "transitions": trans, "start": start})

    def train(self, data: list[Sequence], epochs: int, seed: int) -> None:
        """Fit on ``data``: decode with the current weights, move towards the gold roles."""
        rng = random.Random(seed)
        cached = [
            (sentences, gold, [self._feats(sentences, i) for i in range(len(sentences))])
            for sentences, gold in data
        ]
        k = len(ROLES)
        for _ in range(epochs):
            rng.shuffle(cached)
            for sentences, gold, feats in cached:
                guess = [ROLES.index(t.role) for t in self.live.tag(sentences, feats)]
                if guess != gold:
                    for roles, sign in ((gold, 1.0), (guess, -1.0)):
                        for i, r in enumerate(roles):
                            for f in feats[i]:
                                self.live.weights.setdefault(f, [0.0] * k)[r] += sign
                                self.u_weights.setdefault(f, [0.0] * k)[r] += self.c * sign
                            if i:
                                self.live.transitions[roles[i - 1]][r] += sign
                                self.u_trans[roles[i - 1]][r] += self.c * sign
                            else:
                                self.live.start[r] += sign
                                self.u_start[r] += self.c * sign
                self.c += 1


def report(model: RoleModel, data: list[Sequence]) -> dict[str, object]:
    """Accuracy and per-role precision/recall/F1 on ``data``."""
    tp, fp, fn = Counter[str](), Counter[str](), Counter[str]()
    right = total = 0
    for sentences, gold in data:
        for tagged, g in zip(model.tag(sentences), gold, strict=True):
            truth = ROLES[g]
            total += 1
            if tagged.role == truth:
                right += 1
                tp[truth] += 1
            else:
                fp[tagged.role] += 1
                fn[truth] += 1
    per_role = {}
    for role in ROLES:
        p = tp[role] / max(tp[role] + fp[role], 1)
        r = tp[role] / max(tp[role] + fn[role], 1)
        per_role[role] = {
            "precision": round(p, 3),
            "recall": round(r, 3),
            "f1": round(2 * p * r / max(p + r, 1e-9), 3),
        }
    return {"sentences": total, "accuracy": round(right / max(total, 1), 3), "per_role": per_role}


def _table(name: str, figures: dict[str, object]) -> str:
    lines = [f"{name}: accuracy {figures['accuracy']} on {figures['sentences']} sentences"]
    per_role = figures["per_role"]
    assert isinstance(per_role, dict)
    for role, m in per_role.items():
        lines.append(f"  {role:12} P {m['precision']:.3f}  R {m['recall']:.3f}  F1 {m['f1']:.3f}")
    return "\n".join(lines)


def _compact(model: RoleModel, min_weight: float) -> dict[str, object]:
    weights = {
        f: [round(v, 2) for v in ws]
        for f, ws in sorted(model.weights.items())
        if max(abs(v) for v in ws) >= min_weight
    }
    return {
        "roles": list(ROLES),
        "weights": weights,
        "transitions": [[round(v, 2) for v in row] for row in model.transitions],
        "start": [round(v, 2) for v in model.start],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-weight", type=float, default=0.5)
    parser.add_argument("--check", action="store_true", help="only report the shipped model")
    args = parser.parse_args()
    dev, heldout = sequences("dev"), sequences("heldout")
    if args.check:
        print(_table("shipped model, held-out", report(shipped_model(), heldout)))
        return
    positional = Perceptron(keep={"bias", "pos", "from_end", "from_start"})
    positional.train(dev, args.epochs, args.seed)
    full = Perceptron()
    full.train(dev, args.epochs, args.seed)
    data = _compact(full.model(), args.min_weight)
    shipped = RoleModel(data)  # type: ignore[arg-type]
    figures = report(shipped, heldout)
    baseline = report(positional.model(), heldout)
    print(_table("position-only baseline, held-out", baseline))
    print(_table("role model, held-out", figures))
    data["meta"] = {
        "trained_on": f"{DATA.name} dev split ({len(dev)} abstracts)",
        "data_sha256": hashlib.sha256(DATA.read_bytes()).hexdigest(),
        "epochs": args.epochs,
        "seed": args.seed,
        "heldout": figures,
        "heldout_position_only": baseline,
        "script": "scripts/train_roles.py",
    }
    OUT.write_text(json.dumps(data, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {OUT} ({OUT.stat().st_size // 1024} KiB, {len(data['weights'])} features)")  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
