"""Input files → papers. ``iter_papers`` streams, and reports a bad record without stopping."""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from keyfindings.errors import InputError, LoaderError
from keyfindings.loaders.pubmed_xml import iter_pubmed_xml
from keyfindings.loaders.tabular import iter_csv, iter_csv_rows, iter_json, iter_jsonl
from keyfindings.paper import Paper

__all__ = ["SUFFIXES", "count_records", "iter_papers", "load_papers"]

_Reader = Callable[[Path], Iterator[Paper | InputError]]
SUFFIXES: dict[str, _Reader] = {
    ".json": iter_json,
    ".jsonl": iter_jsonl,
    ".ndjson": iter_jsonl,
    ".csv": iter_csv,
    ".tsv": iter_csv,
    ".xml": iter_pubmed_xml,
}


def _files(path: Path) -> Iterator[Path]:
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
        if not found:
            raise LoaderError(f"{path}: no input files ({', '.join(SUFFIXES)}) in this directory")
        yield from found
    elif path.is_file():
        yield path
    else:
        raise LoaderError(f"{path}: no such file or directory")


def iter_papers(path: str | Path) -> Iterator[Paper | InputError]:
    """Every paper in a file or directory, or the error for each record that is not one.

    A file that cannot be read at all raises ``LoaderError``; a bad record is yielded as its error
    so that one broken line does not cost the rest of a batch.
    """
    if str(path) == "-":
        yield from _stdin()
        return
    for file in _files(Path(path)):
        reader = SUFFIXES.get(file.suffix.lower())
        if reader is None:
            raise LoaderError(f"{file}: unknown input format (use {', '.join(SUFFIXES)})")
        try:
            yield from reader(file)
        except OSError as exc:
            raise LoaderError(f"{file}: cannot read ({exc.strerror or exc})") from None


def _stdin() -> Iterator[Paper | InputError]:
    """Papers piped in: XML if it starts with "<", a JSON document if it parses as one, else
    JSON lines. Spooled to a temporary file so the ordinary readers apply."""
    data = sys.stdin.buffer.read()
    head = data.lstrip()[:1]
    if head == b"<":
        suffix = ".xml"
    else:
        try:
            json.loads(data)
            suffix = ".json"
        except (ValueError, RecursionError):
            suffix = ".jsonl"
    with tempfile.TemporaryDirectory(prefix="keyfindings-stdin-") as folder:
        file = Path(folder) / f"stdin{suffix}"
        file.write_bytes(data)
        for item in SUFFIXES[suffix](file):
            if isinstance(item, InputError):
                item = type(item)(str(item).replace(str(file), "<stdin>"))
            yield item


def load_papers(path: str | Path) -> list[Paper]:
    """All papers in a file or directory; the first bad record raises its error."""
    papers = []
    for item in iter_papers(path):
        if isinstance(item, InputError):
            raise item
        papers.append(item)
    return papers


def _count_file(path: Path) -> int:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        with path.open("rb") as handle:
            return sum(1 for line in handle if line.strip())
    if suffix in (".csv", ".tsv"):
        return max(0, sum(1 for _ in iter_csv_rows(path)))
    if suffix == ".xml":
        count, tail = 0, b""
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                data = tail + chunk
                count += data.count(b"<PubmedArticle>") + data.count(b"<PubmedArticle ")
                tail = data[-20:]
                count -= tail.count(b"<PubmedArticle>") + tail.count(b"<PubmedArticle ")
            return count + tail.count(b"<PubmedArticle>") + tail.count(b"<PubmedArticle ")
    return sum(1 for _ in SUFFIXES[suffix](path))


def count_records(path: str | Path) -> int | None:
    """How many records the inputs hold, cheaply (for progress ETA); None if unreadable."""
    try:
        return sum(_count_file(file) for file in _files(Path(path)))
    except (OSError, InputError, KeyError):
        return None
