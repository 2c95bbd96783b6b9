"""The papers this server knows by id: what ``GET /v1/papers/{id}/key-findings`` may generate.

The server, not the client, decides what an id means. Papers come from the operator's files,
read with the ordinary loaders (PubMed XML, JSON, JSONL, CSV or a directory of them).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from keyfindings.errors import InputError
from keyfindings.loaders import iter_papers
from keyfindings.paper import Paper

log = logging.getLogger("keyfindings")


class Catalogue:
    """Papers by id; the first record with an id wins, later duplicates are reported."""

    def __init__(self, papers: Iterable[Paper] = ()) -> None:
        self._papers: dict[str, Paper] = {}
        self.skipped = 0
        for paper in papers:
            self.add(paper)

    @classmethod
    def load(cls, paths: Iterable[str | Path]) -> Catalogue:
        """Every paper in the files; bad records are logged and counted, not fatal."""
        catalogue = cls()
        for path in paths:
            for item in iter_papers(path):
                if isinstance(item, InputError):
                    catalogue.skipped += 1
                    log.warning("catalogue: skipped a record: %s", item)
                else:
                    catalogue.add(item)
        return catalogue

    def add(self, paper: Paper) -> None:
        """Add a paper unless its id is taken (then the first one stays)."""
        if paper.id in self._papers:
            if self._papers[paper.id] != paper:
                self.skipped += 1
                log.warning("catalogue: id %s appears twice with different content", paper.id)
            return
        self._papers[paper.id] = paper

    def get(self, paper_id: str) -> Paper | None:
        """The paper with this id, if the catalogue has it."""
        return self._papers.get(paper_id)

    def __len__(self) -> int:
        return len(self._papers)
