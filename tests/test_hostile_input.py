"""Hostile and odd input text: linear-time parsing, typed errors, fuzzed with Hypothesis.

The time bounds here are about complexity, not speed: each input takes milliseconds when the
parsing is linear and minutes when it is quadratic (a 242 KB POST froze the server for 64 s).
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyfindings import Paper
from keyfindings.checks import check_findings
from keyfindings.errors import InputError
from keyfindings.loaders import iter_papers
from keyfindings.numbers import number_set
from keyfindings.schema import Finding, KeyFindings, StudyType
from keyfindings.sentences import split_sentences
from keyfindings.text import normalize_text

HOSTILE_UNITS = [
    "<!--",
    "<script>",
    "<math>",
    "<mml:math x='1'>",
    "<sup>",
    "<style x",
    "<a ",
    "<",
    "&lt;script&gt;",
    "a. ",
    "e.g. ",
    "J. ",
    "METHODS: ",
    "1,",
    "-1",
    "one hundred ",
    "[S1",
]
FRAGMENTS = [*HOSTILE_UNITS, "</script>", "-->", "</sup>", " ", "RESULTS: ", "p < 0.05", "9" * 40]
LOOSE_BOUND_S = 3.0


@pytest.mark.parametrize("unit", HOSTILE_UNITS)
def test_hostile_markup_is_parsed_in_linear_time(unit: str) -> None:
    text = "Background " + unit * (240_000 // len(unit))
    start = time.perf_counter()
    clean = normalize_text(text)
    split_sentences(clean)
    number_set(clean)
    with pytest.raises(InputError):  # over the raw length limit: refused, not parsed
        Paper.from_dict({"abstract": text * 2})
    assert time.perf_counter() - start < LOOSE_BOUND_S


def test_entity_encoded_tags_do_not_come_alive() -> None:
    text = normalize_text(
        "Results &lt;script&gt;alert(1)&lt;/script&gt; held &lt;b&gt;x&lt;/b&gt;."
    )
    assert "<" not in text and "alert" not in text and text == "Results held x."
    assert normalize_text("p &lt; 0.05 and age &lt;or= 65") == "p < 0.05 and age <or= 65"


def test_integers_longer_than_decimal_precision_are_numbers(rct: Paper) -> None:
    huge = "1" * 40
    assert huge in number_set(f"We counted {huge} cells.")
    findings = KeyFindings(
        study_type=StudyType.RANDOMIZED_CONTROLLED_TRIAL,
        methodology=[],
        results=[Finding(text=f"There were {huge} events in {'2' * 35} cells.")],
        significance=[],
    )
    problems = check_findings(rct, findings)
    assert any(huge in p.message for p in problems)


abstracts = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=40)), min_size=1, max_size=60
).map("".join)


@settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(abstracts)
def test_fuzzed_text_never_raises_outside_typed_errors(text: str) -> None:
    clean = normalize_text(text)
    assert "\x00" not in clean and clean == clean.strip()
    for sentence in split_sentences(clean):
        assert sentence.text
    number_set(clean)
    try:
        paper = Paper.from_dict({"abstract": text, "title": text[:50]})
    except InputError:
        return
    assert paper.sentences and paper.id


@settings(
    max_examples=40,
    deadline=3000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(abstracts)
def test_fuzzed_files_yield_papers_or_typed_errors(tmp_path: Path, text: str) -> None:
    jsonl = tmp_path / "papers.jsonl"
    jsonl.write_text(json.dumps({"id": "x", "abstract": text}) + "\n" + text[:80] + "\n")
    with (tmp_path / "papers.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows([["id", "abstract"], ["x", text]])
    xml = tmp_path / "papers.xml"
    xml.write_text(
        "<PubmedArticleSet><PubmedArticle><MedlineCitation><PMID>1</PMID><Article>"
        f"<Abstract><AbstractText>{text}</AbstractText></Abstract></Article></MedlineCitation>"
        "</PubmedArticle></PubmedArticleSet>",
        encoding="utf-8",
        errors="surrogatepass",
    )
    for path in (jsonl, tmp_path / "papers.csv", xml):
        try:
            items = list(iter_papers(path))
        except InputError:
            continue
        assert all(isinstance(item, Paper | InputError) for item in items)


def test_numbers_written_as_words_in_a_finding_are_checked() -> None:
    from keyfindings.numbers import unsupported_numbers

    source = number_set("In all, 9,600 patients died and two groups were compared.")
    assert unsupported_numbers("Nine thousand seven hundred patients died.", source) == ["9700"]
    assert unsupported_numbers("Nine thousand six hundred patients died.", source) == []
    assert unsupported_numbers("One of the two groups improved.", source) == []


def test_json_nested_too_deeply_is_a_typed_error(tmp_path: Path) -> None:
    from keyfindings.errors import LoaderError
    from keyfindings.schema import CitedAnswer
    from keyfindings.summarizer import parse_answer

    deep = "[" * 100_000 + "]" * 100_000
    findings, issues = parse_answer(deep, CitedAnswer)
    assert findings is None and "nested too deeply" in issues[0].message
    (tmp_path / "deep.jsonl").write_text('{"abstract": ' + deep + "}\n")
    [item] = list(iter_papers(tmp_path / "deep.jsonl"))
    assert isinstance(item, LoaderError) and "nested too deeply" in str(item)
    (tmp_path / "deep.json").write_text(deep)
    with pytest.raises(LoaderError, match="nested too deeply"):
        list(iter_papers(tmp_path / "deep.json"))
