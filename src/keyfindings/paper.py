"""``Paper``: the input contract. Whatever the source format, a paper arrives here normalised.

Normalising once, at the door, means the sentences a finding cites, the numbers it is checked
against and the cache key all see the same text.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from keyfindings.errors import AbstractError, InputError
from keyfindings.numbers import number_set
from keyfindings.sentences import Sentence, split_sentences
from keyfindings.text import normalize_text

MIN_ABSTRACT_WORDS = 15
MAX_ABSTRACT_CHARS = 20_000
# Checked on the raw input, before any parsing: room for markup, small enough to refuse at once.
MAX_RAW_FIELD_CHARS = 10 * MAX_ABSTRACT_CHARS
_LIST_SPLIT = re.compile(r"\s*[;|]\s*")
# Scripts written without spaces between words: Han, kana, Hangul.
_UNSPACED = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")
# Characters per word in those scripts, roughly (Chinese words average under two characters).
_CHARS_PER_WORD = 2


def word_count(text: str) -> int:
    """Words, counted per script: by spaces, and by characters where words have no spaces
    (a Chinese abstract is one "word" by whitespace)."""
    unspaced = len(_UNSPACED.findall(text))
    spaced = len(_UNSPACED.sub(" ", text).split())
    return spaced + -(-unspaced // _CHARS_PER_WORD)


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = _LIST_SPLIT.split(value)
    if not isinstance(value, (list, tuple)):
        raise ValueError("expected a list of strings or a ';'-separated string")
    return [normalize_text(str(v)) for v in value if v is not None and str(v).strip()]


class Paper(BaseModel):
    """A paper's abstract and metadata; text fields are normalised on construction.

    ``id`` is stable: given, else ``pmid-<PMID>``, else ``doi-<DOI>``, else a content hash.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str = ""
    title: str = ""
    abstract: str
    authors: list[str] = []
    journal: str = ""
    year: int | None = None
    doi: str = ""
    pmid: str = ""
    keywords: list[str] = []
    language: str = ""

    @model_validator(mode="before")
    @classmethod
    def _merge_aliases(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            data = dict(data)
            for name, value in data.items():
                if isinstance(value, str) and len(value) > MAX_RAW_FIELD_CHARS:
                    raise ValueError(
                        f"{name} is too long ({len(value)} characters, at most "
                        f"{MAX_RAW_FIELD_CHARS} before markup is removed)"
                    )
            extra = [*_as_list(data.get("mesh")), *_as_list(data.get("categories"))]
            if extra:
                data["keywords"] = [*_as_list(data.get("keywords")), *extra]
        return data

    @field_validator("title", "abstract", "journal", "doi", "pmid", "language", "id", mode="before")
    @classmethod
    def _text(cls, value: Any) -> str:
        return "" if value is None else normalize_text(str(value))

    @field_validator("authors", "keywords", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> list[str]:
        return _as_list(value)

    @field_validator("year", mode="before")
    @classmethod
    def _year(cls, value: Any) -> int | None:
        if value in (None, ""):
            return None
        match = re.search(r"\b(1[5-9]\d\d|20\d\d)\b", str(value))
        if not match:
            raise ValueError(f"not a year: {value!r}")
        return int(match.group(1))

    @model_validator(mode="after")
    def _check(self) -> Paper:
        words = word_count(self.abstract)
        if words == 0:
            raise ValueError("the abstract is empty")
        if words < MIN_ABSTRACT_WORDS:
            raise ValueError(
                f"the abstract is too short to summarise ({words} words, "
                f"need at least {MIN_ABSTRACT_WORDS})"
            )
        if len(self.abstract) > MAX_ABSTRACT_CHARS:
            raise ValueError(
                f"the abstract is too long ({len(self.abstract)} characters, "
                f"at most {MAX_ABSTRACT_CHARS}); is this a full text?"
            )
        if not self.id:
            object.__setattr__(self, "id", self._default_id())
        return self

    def _default_id(self) -> str:
        if self.pmid:
            return f"pmid-{self.pmid}"
        if self.doi:
            return f"doi-{self.doi.lower()}"
        digest = hashlib.sha256(f"{self.title}\n{self.abstract}".encode()).hexdigest()
        return f"sha256-{digest[:16]}"

    @cached_property
    def sentences(self) -> list[Sentence]:
        """The abstract's numbered sentences ([S1] … [Sn])."""
        return split_sentences(self.abstract)

    @cached_property
    def numbers(self) -> frozenset[str]:
        """Every number the title and abstract state, canonicalised."""
        return number_set(f"{self.title} {self.abstract}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "paper") -> Paper:
        """Build a Paper from loose input, turning validation failures into typed errors."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                (".".join(str(p) for p in err["loc"]) + ": " if err["loc"] else "")
                + err["msg"].removeprefix("Value error, ")
                for err in exc.errors()
            )
            error_type = AbstractError if "abstract" in problems else InputError
            raise error_type(f"{where}: {problems}") from None
