"""Model assembly from data packages, with small fake parts made by the test."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

from keyfindings import ModelFileError
from keyfindings.models import PackagedModel, assemble


def fake_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunks: list[bytes]) -> list[str]:
    names = []
    for i, chunk in enumerate(chunks, 1):
        name = f"kf_fake_part{i}"
        folder = tmp_path / "site" / name
        folder.mkdir(parents=True)
        (folder / "data.bin").write_bytes(chunk)
        (folder / "__init__.py").write_text(
            "import os\ndef get_part_path():\n"
            "    return os.path.join(os.path.dirname(__file__), 'data.bin')\n"
        )
        names.append(name)
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    return names


def model(names: list[str], data: bytes, sha: str | None = None) -> PackagedModel:
    return PackagedModel(
        "tiny", "test model", tuple(names), len(data), sha or hashlib.sha256(data).hexdigest()
    )


def test_assembles_in_order_and_verifies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chunks = [b"GGUF" + b"a" * 100, b"b" * 50, b"c" * 7]
    names = fake_parts(tmp_path, monkeypatch, chunks)
    spec = model(names, b"".join(chunks))
    path = assemble(spec, tmp_path / "models")
    assert path.read_bytes() == b"".join(chunks)
    assert [p.name for p in (tmp_path / "models").iterdir()] == sorted(
        ["tiny.gguf", "tiny.gguf.verified"]
    )
    # Second use trusts the verified marker; a changed file is assembled again.
    assert assemble(spec, tmp_path / "models") == path
    path.write_bytes(b"tampered")
    assert assemble(spec, tmp_path / "models").read_bytes() == b"".join(chunks)


def test_hash_mismatch_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    names = fake_parts(tmp_path, monkeypatch, [b"x" * 10, b"y" * 10])
    with pytest.raises(ModelFileError, match="do not add up"):
        assemble(model(names, b"x" * 10 + b"y" * 10, sha="0" * 64), tmp_path / "models")
    assert list((tmp_path / "models").iterdir()) == []


def test_missing_part_names_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    names = fake_parts(tmp_path, monkeypatch, [b"x" * 10])
    spec = model([*names, "kf_fake_part_missing"], b"x" * 10)
    with pytest.raises(ModelFileError, match=r"kf-fake-part-missing.*keyfindings\[local\]"):
        assemble(spec, tmp_path / "models")
