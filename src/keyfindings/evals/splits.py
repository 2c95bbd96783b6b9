"""Labelled abstracts and a fixed split of them: ``dev`` to write rules and train on,
``heldout`` to report on. The split is by a hash of the paper id, so it never depends on file
order and a new row lands in the same split on every machine."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from keyfindings.errors import KeyFindingsError
from keyfindings.paper import Paper

Split = Literal["dev", "heldout", "all"]
HELDOUT_SHARE = 5  # one paper in five is held out


def split_of(paper_id: str) -> Literal["dev", "heldout"]:
    """Which split a paper id belongs to."""
    digest = hashlib.sha256(paper_id.encode()).digest()
    return "heldout" if digest[0] % HELDOUT_SHARE == 0 else "dev"


def labelled_rows(path: Path, split: Split = "all") -> Iterator[tuple[Paper, dict[str, str]]]:
    """Each row's ``Paper`` (abstract and metadata only) and its authors' labelled sections."""
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                paper = Paper.from_dict(row, where=f"{path}:{number}")
            except (ValueError, KeyFindingsError):
                continue
            if split == "all" or split_of(paper.id) == split:
                yield paper, dict(row.get("sections") or {})
