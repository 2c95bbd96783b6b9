from __future__ import annotations

from pathlib import Path

import pytest

from keyfindings import Paper, PromptError, load_prompt
from keyfindings.prompts import list_prompts

GOOD = """---
name: demo
version: 1
description: test prompt
answer_format: text_sections
schema_version: "1"
params:
  temperature: 0.2
  max_tokens: 300
---
## system
Fixed instructions.

## user
Title: {{title}}
{{sentences}}
"""


def write(tmp_path: Path, text: str, name: str = "demo", version: int = 1) -> Path:
    folder = tmp_path / name
    folder.mkdir(exist_ok=True)
    (folder / f"v{version}.md").write_text(text)
    return tmp_path


def test_shipped_prompts_load_and_render(rct: Paper) -> None:
    refs = [p.ref.ref for p in list_prompts()]
    assert "key_findings@v1" in refs and "key_findings_compact@v1" in refs
    messages = load_prompt("key_findings@v1").render(rct)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[1]["content"].rstrip().endswith(rct.sentences[-1].text)  # paper last
    assert "[S6] Infections occurred in 187 children" in messages[1]["content"]


def test_refs_versions_and_params(tmp_path: Path) -> None:
    write(tmp_path, GOOD)
    write(tmp_path, GOOD.replace("version: 1", "version: 2"), version=2)
    assert load_prompt("demo", tmp_path).meta.version == 2
    prompt = load_prompt("demo@v1", tmp_path)
    assert prompt.meta.params.max_tokens == 300 and prompt.ref.ref == "demo@v1"
    assert len(prompt.sha256) == 64
    assert load_prompt("demo@1", tmp_path).sha256 == prompt.sha256


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("nope@v1", "unknown prompt 'nope'"),
        ("demo@v7", "has no version v7"),
        ("bad ref!", "bad prompt reference"),
    ],
)
def test_unknown_refs(tmp_path: Path, ref: str, message: str) -> None:
    write(tmp_path, GOOD)
    with pytest.raises(PromptError, match=message):
        load_prompt(ref, tmp_path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD.replace("{{title}}", "{{doi_link}}"), "unknown variables"),
        (
            GOOD.replace("answer_format: text_sections", "answer_format: poem"),
            "unknown answer_format",
        ),
        (GOOD.replace("description: test prompt\n", ""), "bad front matter"),
        (GOOD.replace("description:", "colour: red\ndescription:"), "bad front matter"),
        (GOOD.replace("## user", "## other"), "one '## system' and one '## user'"),
        (GOOD.replace('schema_version: "1"', 'schema_version: "0"'), "schema"),
        (GOOD.replace("---\nname", "name", 1), "front matter"),
        (GOOD.replace("version: 1", "version: 3"), "says demo@v3"),
    ],
)
def test_malformed_prompt_files(tmp_path: Path, text: str, message: str) -> None:
    write(tmp_path, text)
    with pytest.raises(PromptError, match=message):
        load_prompt("demo@v1", tmp_path)


def test_role_tagged_prompt_renders_roles_and_keys_by_the_role_model(rct: Paper) -> None:
    from keyfindings.prompts import ROLE_VARIABLE, key_variables, load_prompt, paper_variables

    prompt = load_prompt("key_findings_compact@v4")
    assert prompt.extra_variables == {ROLE_VARIABLE}
    user = prompt.render(rct)[1]["content"]
    assert "[methods] We conducted a double-blind" in user
    assert "[results] Hypercalcaemia was not observed." in user
    keyed = key_variables(rct, prompt.extra_variables)
    assert keyed[ROLE_VARIABLE].startswith("roles:")  # the model's identity, not a tagging run
    assert ROLE_VARIABLE not in paper_variables(rct)  # other prompts' keys are unchanged
