from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from keyfindings import Paper, ResultCache, Summarizer
from keyfindings.backends.openai_compat import OpenAICompatBackend
from keyfindings.cache import KEY_PREFIX, cache_key, canonical_json
from tests.conftest import FIXTURES, rct_answer
from tests.scripted_server import ScriptedServer, chat


def summarizer(
    base_url: str = "http://127.0.0.1:9/v1",
    model: str = "m",
    prompt: str = "key_findings@v1",
    **kwargs: Any,
) -> Summarizer:
    return Summarizer(
        OpenAICompatBackend(model, base_url=base_url), prompt=prompt, use_cache=False, **kwargs
    )


def test_canonical_json_ignores_key_order_and_whitespace() -> None:
    assert canonical_json({"b": 1, "a": [1, {"y": 2, "x": 1}]}) == '{"a":[1,{"x":1,"y":2}],"b":1}'
    assert cache_key({"b": 1, "a": 2}) == cache_key({"a": 2, "b": 1})
    assert cache_key({"a": 1}).startswith(KEY_PREFIX)


def test_key_changes_with_everything_that_changes_the_answer(rct: Paper) -> None:
    base = summarizer().key_for(rct)
    changed_abstract = Paper(**{**rct.model_dump(), "abstract": rct.abstract + " Extra."})
    assert summarizer().key_for(changed_abstract) != base
    assert summarizer(prompt="key_findings_compact@v1").key_for(rct) != base
    assert summarizer(model="other").key_for(rct) != base
    assert summarizer(base_url="http://127.0.0.1:10/v1").key_for(rct) != base
    assert summarizer(params={"temperature": 0.7}).key_for(rct) != base
    assert summarizer(params={"max_tokens": 50}).key_for(rct) != base


def test_key_ignores_whitespace_markup_and_unused_fields(rct: Paper) -> None:
    base = summarizer().key_for(rct)
    spaced = Paper(**{**rct.model_dump(), "abstract": "  " + rct.abstract.replace(" ", "  \n")})
    assert summarizer().key_for(spaced) == base
    # DOI is not shown to the prompt, so it does not change the answer.
    assert summarizer().key_for(Paper(**{**rct.model_dump(), "doi": "10.1/other"})) == base


def test_key_changes_with_the_schema(rct: Paper, monkeypatch: Any) -> None:
    import keyfindings.summarizer as module

    base = summarizer().key_for(rct)
    monkeypatch.setattr(module, "SCHEMA_VERSION", "999")
    assert summarizer().key_for(rct) != base


def test_values_are_json_text_not_pickle(
    make_summarizer: Any, server: ScriptedServer, rct: Paper, cache: ResultCache
) -> None:
    server.queue(chat(rct_answer()))
    s = make_summarizer()
    s.summarize(rct)
    raw = cache._cache.get(s.key_for(rct))
    assert isinstance(raw, str) and raw.startswith('{"paper_id":"pmid-90000001"')


def test_corrupt_entry_reads_as_a_miss(cache: ResultCache) -> None:
    cache._cache.set("kf1:sha256:x", "{not json")
    assert cache.get("kf1:sha256:x") is None


def test_clear_by_prompt_and_stats(
    make_summarizer: Any, server: ScriptedServer, rct: Paper, review: Paper, cache: ResultCache
) -> None:
    review_answer = {
        "study_type": "narrative_review",
        "methodology": [
            {
                "text": "This review summarises evidence linking the gut microbiota to depression.",
                "evidence": [2],
            }
        ],
        "results": [],
        "significance": [],
        "limitations": [],
    }
    server.queue(chat(rct_answer()), chat(review_answer))
    s = make_summarizer()
    s.summarize(rct)
    s.summarize(review)
    assert cache.stats()["by_prompt"] == {"key_findings@v1": 2}
    assert cache.stats()["flagged"] == 0 and cache.stats()["stored_answers"] == 2
    assert cache.clear("key_findings_compact@v1") == {"results": 0, "flagged": 0, "answers": 0}
    assert cache.clear("key_findings@v1") == {"results": 2, "flagged": 0, "answers": 2}
    assert cache.stats()["entries"] == 0


def test_second_process_reads_the_first_process_entry(
    make_summarizer: Any, server: ScriptedServer, cache: ResultCache
) -> None:
    server.queue(chat(rct_answer()))
    make_summarizer().summarize(Paper.model_validate_json((FIXTURES / "rct.json").read_text()))
    code = f"""
import sys
from keyfindings import Paper, ResultCache, Summarizer
from keyfindings.backends.openai_compat import OpenAICompatBackend
paper = Paper.model_validate_json(open({str(FIXTURES / "rct.json")!r}).read())
backend = OpenAICompatBackend("test-model", base_url={server.base_url!r},
                              api_key="sk-secret-test-key")
result = Summarizer(backend, cache=ResultCache({str(cache.directory)!r})).summarize(paper)
print(result.cached, result.status)
"""
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[1],
    )
    assert out.stdout.split() == ["True", "ok"]
    assert server.calls == 1
