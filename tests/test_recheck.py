"""Re-checking stored answers after the checks change: no model call, unless asked."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from keyfindings import Paper
from keyfindings.cache import ResultCache
from tests.conftest import rct_answer
from tests.scripted_server import ScriptedServer, chat


def test_new_checks_version_rechecks_stored_answers_without_a_call(
    make_summarizer: Any,
    server: ScriptedServer,
    rct: Paper,
    cache: ResultCache,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server.queue(chat(rct_answer()))
    first = make_summarizer().summarize(rct)
    assert first.status == "ok" and server.calls == 1 and len(first.answers) == 1

    monkeypatch.setattr("keyfindings.summarizer.CHECKS_VERSION", "next")
    later = make_summarizer()
    assert later.key_for(rct) != first and later.cached(rct) is None  # a new key: a miss
    rechecked = later.recheck(rct)
    assert rechecked is not None and rechecked.status == "ok"
    assert rechecked.checks_version == "next" and rechecked.answers == first.answers
    assert rechecked.usage.completion_tokens == first.usage.completion_tokens
    assert server.calls == 1  # no model call
    hit = later.summarize(rct)
    assert hit.cached and server.calls == 1  # stored under the new key


def test_recheck_lists_the_reask_it_would_make_and_makes_it_when_asked(
    make_summarizer: Any, server: ScriptedServer, rct: Paper
) -> None:
    bad = rct_answer()
    bad["results"] = [{"text": "Infections fell by 45% with vitamin D.", "evidence": [6]}]
    server.queue(chat(bad))
    stored = make_summarizer(max_reasks=0).summarize(rct)
    assert stored.status == "flagged" and server.calls == 1

    patient = make_summarizer(max_reasks=2)
    listed = patient.recheck(rct)
    assert listed is not None and listed.status == "flagged" and server.calls == 1
    assert [i.code for i in listed.issues if i.code == "reask_needed"] == ["reask_needed"]
    assert listed.withheld == 1

    server.queue(chat(rct_answer()))
    fixed = patient.recheck(rct, reask=True)
    assert fixed is not None and fixed.status == "ok" and server.calls == 2
    assert len(fixed.answers) == 2 and fixed.usage.reasks == 1


def test_recheck_without_stored_answers_is_none(make_summarizer: Any, rct: Paper) -> None:
    assert make_summarizer().recheck(rct) is None


def test_eval_rejudges_stored_answers_when_only_the_checks_changed(
    make_summarizer: Any,
    server: ScriptedServer,
    rct: Paper,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from keyfindings.evals.runner import _run_cell
    from keyfindings.evals.suite import Case

    server.queue(chat(rct_answer()))
    make_summarizer().summarize(rct)
    same = make_summarizer()
    assert same.recheck(rct, stale_only=True) is None  # judged by today's checks already

    monkeypatch.setattr("keyfindings.summarizer.CHECKS_VERSION", "next")
    case = Case(paper=rct, sections=None, expect={}, source="test")
    [outcome] = asyncio.run(_run_cell(make_summarizer(), [case], 1, lambda _: None))
    assert outcome.result is not None and outcome.result.checks_version == "next"
    assert outcome.result.status == "ok" and server.calls == 1


def test_a_rechecked_result_reports_what_its_answers_took(
    make_summarizer: Any, server: ScriptedServer, rct: Paper, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.queue(chat(rct_answer()))
    first = make_summarizer().summarize(rct)
    assert first.answers[0].latency_ms > 0
    monkeypatch.setattr("keyfindings.summarizer.CHECKS_VERSION", "next")
    again = make_summarizer().recheck(rct)
    assert again is not None and again.latency_ms == first.answers[0].latency_ms
