"""JSON, JSONL and CSV → papers, streamed record by record where the format allows."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from keyfindings.errors import InputError, LoaderError
from keyfindings.paper import Paper

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def _paper(record: Any, where: str) -> Paper | InputError:
    if not isinstance(record, Mapping):
        return LoaderError(f"{where}: expected a JSON object, got {type(record).__name__}")
    try:
        return Paper.from_dict(record, where=where)
    except InputError as exc:
        return exc


def iter_json(path: Path) -> Iterator[Paper | InputError]:
    """A JSON object, a list of objects, or ``{"papers": [...]}``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LoaderError(f"{path}: not valid JSON ({exc})") from None
    except RecursionError:
        raise LoaderError(f"{path}: JSON nested too deeply") from None
    if isinstance(data, Mapping) and isinstance(data.get("papers"), list):
        data = data["papers"]
    records = data if isinstance(data, list) else [data]
    for i, record in enumerate(records, 1):
        yield _paper(record, f"{path}: record {i}")


def iter_jsonl(path: Path) -> Iterator[Paper | InputError]:
    """One JSON object per line; blank lines are skipped, a bad line is reported, not fatal."""
    with path.open(encoding="utf-8-sig", errors="replace") as handle:
        for lineno, line in enumerate(handle, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                yield LoaderError(f"{where}: not valid JSON ({exc.msg})")
                continue
            except RecursionError:
                yield LoaderError(f"{where}: JSON nested too deeply")
                continue
            yield _paper(record, where)


def iter_csv_rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) for each data row; column names lower-cased."""
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
        delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
        reader = csv.DictReader(handle, delimiter=delimiter)
        columns = {f.strip().lower() for f in reader.fieldnames or []}
        if "abstract" not in columns:
            raise LoaderError(f"{path}: a CSV needs a header row with an 'abstract' column")
        for row in reader:
            record = {(k or "").strip().lower(): v for k, v in row.items() if v not in (None, "")}
            yield reader.line_num, record


def iter_csv(path: Path) -> Iterator[Paper | InputError]:
    """CSV/TSV with a header row; column names are matched case-insensitively."""
    for line_num, record in iter_csv_rows(path):
        yield _paper(record, f"{path}:{line_num}")
