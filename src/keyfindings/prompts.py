"""Versioned prompt files → rendered chat messages.

A prompt is data: ``prompts/<name>/v<N>.md`` holds YAML front matter (name, version, description,
answer format, params) and ``## system`` / ``## user`` parts with ``{{variables}}``. A released
version is never edited (its sha256 is in every result and cache key); a change is a new file.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Collection
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from keyfindings.errors import PromptError
from keyfindings.paper import Paper
from keyfindings.roles import model_digest, sentence_roles
from keyfindings.schema import ANSWER_FORMATS, SCHEMA_VERSION, SECTIONS, PromptRef

_BASE_VARIABLES = frozenset(
    {"title", "journal", "year", "authors", "keywords", "abstract", "sentences"}
)
# Variables computed only for prompts that use them (so they enter only those prompts' keys).
ROLE_VARIABLE = "sentences_with_roles"
VARIABLES = _BASE_VARIABLES | {ROLE_VARIABLE}
_VAR = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")
_FRONT = re.compile(r"\A---\n(.*?)\n---\n(.*)\Z", re.S)
_PART = re.compile(r"^## (system|user)\s*$", re.M)
_REF = re.compile(r"\A([a-z0-9_-]+)(?:@v?(\d+))?\Z")


class GenerationParams(BaseModel):
    """Sampling settings; part of the cache key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float = Field(0.0, ge=0, le=2)
    max_tokens: int = Field(1024, gt=0, le=16384)
    top_p: float = Field(1.0, gt=0, le=1)
    seed: int | None = 0


class FrontMatter(BaseModel):
    """The YAML header of a prompt file; unknown keys are an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid")

    name: str
    version: int
    description: str
    answer_format: str
    schema_version: str
    params: GenerationParams = GenerationParams()
    # Optional caps on sentences per text field, enforced where the backend can (a grammar).
    max_sentences: dict[str, int] = Field(default_factory=dict)


@dataclass(frozen=True)
class Prompt:
    """A loaded prompt version; ``render`` fills it for one paper."""

    meta: FrontMatter
    system: str
    user: str
    sha256: str
    path: Path

    @property
    def ref(self) -> PromptRef:
        """Name, version and file hash, as recorded in results."""
        return PromptRef(name=self.meta.name, version=self.meta.version, sha256=self.sha256)

    @property
    def extra_variables(self) -> frozenset[str]:
        """The optional variables this prompt uses (part of its cache key)."""
        used = set(_VAR.findall(self.system)) | set(_VAR.findall(self.user))
        return frozenset(used - _BASE_VARIABLES)

    def render(self, paper: Paper) -> list[dict[str, str]]:
        """System then user message; the paper comes last so the fixed prefix can be cached."""
        values = paper_variables(paper, self.extra_variables)
        return [
            {"role": "system", "content": _fill(self.system, values, self.path)},
            {"role": "user", "content": _fill(self.user, values, self.path)},
        ]


def paper_variables(paper: Paper, extra: Collection[str] = ()) -> dict[str, str]:
    """The values a prompt may use, all derived from the normalised paper; ``extra`` names the
    optional ones wanted (the sentences with their roles)."""
    values = {
        "title": paper.title or "(no title given)",
        "journal": paper.journal or "(not given)",
        "year": str(paper.year) if paper.year else "(not given)",
        "authors": ", ".join(paper.authors[:10]) or "(not given)",
        "keywords": "; ".join(paper.keywords[:25]) or "(none)",
        "abstract": paper.abstract,
        "sentences": "\n".join(f"[S{s.number}] {s.text}" for s in paper.sentences),
    }
    if ROLE_VARIABLE in extra:
        roles = sentence_roles(paper)
        values[ROLE_VARIABLE] = "\n".join(
            f"[{role.role}] {s.text}" for s, role in zip(paper.sentences, roles, strict=True)
        )
    return values


def key_variables(paper: Paper, extra: Collection[str] = ()) -> dict[str, str]:
    """What identifies a paper's rendered prompt, cheaply: the base variables, and for the
    role-tagged sentences the role model's identity instead of running it (cache hits stay
    fast; the roles are a function of the abstract and the model)."""
    values = paper_variables(paper)
    if ROLE_VARIABLE in extra:
        values[ROLE_VARIABLE] = f"roles:{model_digest()}"
    return values


def _fill(template: str, values: dict[str, str], path: Path) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise PromptError(f"{path}: no value for variable {{{{{name}}}}}")
        return values[name]

    return _VAR.sub(one, template)


def prompts_dir() -> Path:
    """``KEYFINDINGS_PROMPTS_DIR``, else the ``prompts/`` folder of this checkout (a source
    tree or an editable install), else the copy a wheel carries inside the package."""
    env = os.environ.get("KEYFINDINGS_PROMPTS_DIR")
    if env:
        return Path(env)
    checkout = Path(__file__).resolve().parents[2] / "prompts"
    if checkout.is_dir():
        return checkout
    return Path(str(resources.files("keyfindings") / "_prompts"))


def _parse(path: Path) -> Prompt:
    raw = path.read_bytes()
    match = _FRONT.match(raw.decode("utf-8"))
    if not match:
        raise PromptError(f"{path}: expected '---' YAML front matter, then the prompt")
    try:
        meta = FrontMatter.model_validate(yaml.safe_load(match.group(1)))
    except (yaml.YAMLError, ValidationError) as exc:
        raise PromptError(f"{path}: bad front matter: {exc}") from None
    parts = _PART.split(match.group(2))
    sections = dict(zip(parts[1::2], (p.strip() for p in parts[2::2]), strict=True))
    if set(sections) != {"system", "user"}:
        raise PromptError(f"{path}: needs exactly one '## system' and one '## user' part")
    if meta.answer_format not in ANSWER_FORMATS:
        raise PromptError(
            f"{path}: unknown answer_format {meta.answer_format!r} "
            f"(known: {', '.join(ANSWER_FORMATS)})"
        )
    if meta.max_sentences and (
        meta.answer_format != "text_sections" or not set(meta.max_sentences) <= set(SECTIONS)
    ):
        raise PromptError(
            f"{path}: max_sentences applies to text_sections answers, with keys "
            f"from {', '.join(SECTIONS)}"
        )
    if meta.schema_version != SCHEMA_VERSION:
        raise PromptError(
            f"{path}: written for schema {meta.schema_version}, "
            f"this keyfindings has schema {SCHEMA_VERSION}"
        )
    unknown = {v for part in sections.values() for v in _VAR.findall(part)} - VARIABLES
    if unknown:
        raise PromptError(
            f"{path}: unknown variables {sorted(unknown)} (known: {', '.join(sorted(VARIABLES))})"
        )
    if path.stem != f"v{meta.version}" or path.parent.name != meta.name:
        raise PromptError(f"{path}: front matter says {meta.name}@v{meta.version}")
    return Prompt(meta, sections["system"], sections["user"], hashlib.sha256(raw).hexdigest(), path)


@cache
def _load_cached(path: Path, mtime_ns: int) -> Prompt:
    return _parse(path)


def _versions(directory: Path, name: str) -> list[int]:
    return sorted(int(p.stem[1:]) for p in (directory / name).glob("v*.md") if p.stem[1:].isdigit())


def load_prompt(ref: str, directory: Path | None = None) -> Prompt:
    """Load ``name@vN`` (or ``name@N``; bare ``name`` means its newest version)."""
    directory = directory or prompts_dir()
    match = _REF.match(ref.strip())
    if not match:
        raise PromptError(f"bad prompt reference {ref!r}; expected NAME@vN, e.g. key_findings@v1")
    name, version = match.group(1), match.group(2)
    versions = _versions(directory, name)
    if not versions:
        known = ", ".join(p.name for p in sorted(directory.glob("*")) if p.is_dir()) or "none"
        raise PromptError(f"unknown prompt {name!r} in {directory} (known: {known})")
    number = int(version) if version else versions[-1]
    if number not in versions:
        raise PromptError(
            f"{name} has no version v{number} (has: {', '.join(f'v{v}' for v in versions)})"
        )
    path = directory / name / f"v{number}.md"
    return _load_cached(path, path.stat().st_mtime_ns)


def list_prompts(directory: Path | None = None) -> list[Prompt]:
    """Every prompt version in the directory, by name then version."""
    directory = directory or prompts_dir()
    names = sorted(p.name for p in directory.glob("*") if p.is_dir())
    return [load_prompt(f"{n}@v{v}", directory) for n in names for v in _versions(directory, n)]


def describe(prompt: Prompt) -> dict[str, Any]:
    """A short summary for ``keyfindings prompts list``."""
    return {
        "ref": prompt.ref.ref,
        "answer_format": prompt.meta.answer_format,
        "description": prompt.meta.description,
        "sha256": prompt.sha256[:12],
    }
