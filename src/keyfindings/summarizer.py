"""The one path from a paper to a Result: render → cache → call → check → re-ask → Result.

The button, batch runs and evals are all callers of ``Summarizer``; none has its own way to the
model. The attempt loop is written once, as a generator that yields requests and receives answers,
and driven by a sync and an async driver, so the two can never drift apart.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

from pydantic import ValidationError

from keyfindings.backends.base import Backend, Completion, Messages
from keyfindings.cache import cache_key
from keyfindings.checks import CHECKS_VERSION, check_findings, errors_only, withhold
from keyfindings.checks.injection import input_issues
from keyfindings.errors import ConfigError, ValidationFailedError
from keyfindings.paper import Paper
from keyfindings.prompts import GenerationParams, Prompt, key_variables, load_prompt
from keyfindings.retry import RetryPolicy
from keyfindings.schema import (
    ANSWER_FORMATS,
    SCHEMA_VERSION,
    AnswerFormat,
    Issue,
    IssueCode,
    KeyFindings,
    RawAnswer,
    Result,
    Usage,
    schema_sha256,
    strict_json_schema,
)
from keyfindings.store import ResultStore, open_store

_FENCE = re.compile(r"\A\s*```(?:json)?\s*(.*?)\s*```\s*\Z", re.S)
_RAW_ECHO_LIMIT = 6000
_SCHEMA_SHA = schema_sha256()


@dataclass
class _Run:
    """State of one summary: what was asked, what it cost, what went wrong last."""

    paper: Paper
    messages: Messages
    usage: Usage = field(default_factory=Usage)
    started: float = field(default_factory=time.perf_counter)
    answers: list[RawAnswer] = field(default_factory=list)
    # Answers replayed from a stored result (``recheck``): already paid and counted.
    replay: list[RawAnswer] = field(default_factory=list)
    # With ``reask=False`` a recheck stops when the replayed answers run out.
    attempt_limit: int | None = None
    # Milliseconds the last answer took (retries included), and the time of the last answer.
    waited: float = 0.0
    mark: float = field(default_factory=time.perf_counter)

    def lap(self, replayed: RawAnswer | None = None) -> None:
        """Note what the answer just received took: measured, or as stored when replayed."""
        now = time.perf_counter()
        self.waited = replayed.latency_ms if replayed else round((now - self.mark) * 1000, 1)
        self.mark = now


def parse_answer(
    text: str, answer_type: type[AnswerFormat]
) -> tuple[KeyFindings | None, list[Issue]]:
    """Raw model text → KeyFindings, or the issues that say exactly why not."""
    fenced = _FENCE.match(text)
    body = fenced.group(1) if fenced else text.strip()
    problem: str | None = None
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        problem = f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    except RecursionError:
        problem = "nested too deeply"
    if problem is not None:
        return None, [
            Issue(code=IssueCode.INVALID_JSON, message=f"the answer is not valid JSON ({problem})")
        ]
    try:
        answer = answer_type.model_validate(data)
    except ValidationError as exc:
        return None, [
            Issue(
                code=IssueCode.SCHEMA,
                message=f"{'.'.join(map(str, e['loc'])) or 'answer'}: {e['msg']}",
            )
            for e in exc.errors()[:10]
        ]
    findings: KeyFindings = answer.to_findings()
    return findings, []


def reask_message(issues: list[Issue]) -> str:
    """The follow-up that tells the model exactly what to fix."""
    lines = "\n".join(f"- {issue.message}" for issue in issues)
    return (
        f"Your answer has these problems:\n{lines}\n"
        "Fix them and reply with the corrected JSON object only, in the same shape."
    )


class Summarizer:
    """Reusable summariser: one backend, one prompt version, one cache.

    ``on_invalid="flag"`` returns a result with ``status="flagged"`` when the answer still fails
    the checks after ``max_reasks`` re-asks; ``"raise"`` raises ``ValidationFailedError``.
    """

    def __init__(
        self,
        backend: Backend,
        *,
        prompt: str | Prompt = "key_findings@v1",
        cache: ResultStore | None = None,
        use_cache: bool = True,
        refresh: bool = False,
        max_reasks: int = 2,
        retry: RetryPolicy | None = None,
        on_invalid: Literal["flag", "raise"] = "flag",
        params: Mapping[str, Any] | None = None,
    ) -> None:
        self.backend = backend
        self.prompt = load_prompt(prompt) if isinstance(prompt, str) else prompt
        base = self.prompt.meta.params
        try:
            self.params = (
                GenerationParams.model_validate({**base.model_dump(), **params}) if params else base
            )
        except ValidationError as exc:
            raise ConfigError(f"bad generation parameters: {exc}") from None
        self.cache = (cache or open_store()) if use_cache else None
        self._owns_cache = use_cache and cache is None
        self.refresh = refresh
        self.max_reasks = max_reasks
        self.retry = retry or RetryPolicy()
        self.on_invalid = on_invalid
        self._answer_type = ANSWER_FORMATS[self.prompt.meta.answer_format]
        self._schema = strict_json_schema(self._answer_type)
        for name, cap in self.prompt.meta.max_sentences.items():
            self._schema["properties"][name]["maxSentences"] = cap
        self._scope: str | None = None
        self._generation_scope: str | None = None

    @property
    def schema(self) -> dict[str, Any]:
        """The answer's JSON schema as sent to the model."""
        return self._schema

    # ---- keys and cache ----

    def _configuration(self) -> dict[str, Any]:
        """Everything but the paper that changes the result: what the model writes, how it is
        judged, and the shape it is stored in."""
        return {
            **self._generation(),
            "schema": {"version": SCHEMA_VERSION, "sha256": _SCHEMA_SHA},
            "checks": CHECKS_VERSION,
        }

    def _generation(self) -> dict[str, Any]:
        """Everything but the paper that changes what the model writes — not how it is judged
        nor how results are stored, so stored answers outlive a change to either."""
        return {
            "prompt": self.prompt.ref.model_dump(),
            "model": self.backend.identity(),
            "params": self.params.model_dump(),
            "answer": {
                "format": self.prompt.meta.answer_format,
                "schema": cache_key(self._schema),
            },
        }

    def scope(self) -> str:
        """Hash of the configuration without the paper (computed once: it is on the hot path
        of every cache hit). Part of every key; also indexes results by paper id."""
        if self._scope is None:
            self._scope = cache_key(self._configuration()).rsplit(":", 1)[-1]
        return self._scope

    def key_for(self, paper: Paper) -> str:
        """Cache key: the paper fields the prompt sees, plus the configuration's hash."""
        return cache_key({"paper": self._variables(paper), "configuration": self.scope()})

    def answers_key(self, paper: Paper) -> str:
        """Where the model's raw answers for this paper are kept, whatever the checks version."""
        if self._generation_scope is None:
            self._generation_scope = cache_key(self._generation()).rsplit(":", 1)[-1]
        return cache_key({"paper": self._variables(paper), "generation": self._generation_scope})

    def _variables(self, paper: Paper) -> dict[str, str]:
        return key_variables(paper, self.prompt.extra_variables)

    def cached(self, paper: Paper | Mapping[str, Any]) -> Result | None:
        """The cached result for this paper under this configuration, if any."""
        if self.cache is None:
            return None
        paper = _as_paper(paper)
        return self.cache.get(self.key_for(paper))

    # ---- the attempt loop ----

    def _session(self, run: _Run) -> Generator[Messages, Completion, Result]:
        issues: list[Issue] = []
        raw: str | None = None
        attempts = self.max_reasks + 1
        if run.attempt_limit is not None:
            attempts = min(attempts, run.attempt_limit)
        # The flagged result keeps the attempt with the fewest errors, not merely the last one.
        best: tuple[int, KeyFindings | None, list[Issue]] = (1 << 30, None, [])
        for attempt in range(attempts):
            if attempt >= max(1, len(run.replay)):
                run.usage.reasks += 1
            completion = yield run.messages
            raw = completion.text
            run.answers.append(
                RawAnswer(text=raw, finish_reason=completion.finish_reason, latency_ms=run.waited)
            )
            findings, issues = self._evaluate(run.paper, completion)
            if not errors_only(issues):
                return self._result(run, "ok", findings, issues)
            rank = len(errors_only(issues)) if findings is not None else 1 << 20
            if rank < best[0]:
                best = (rank, findings, issues)
            run.messages = [
                *run.messages,
                {"role": "assistant", "content": raw[:_RAW_ECHO_LIMIT]},
                {"role": "user", "content": reask_message(errors_only(issues))},
            ]
        if attempts == self.max_reasks + 1 and self.on_invalid == "raise":
            raise ValidationFailedError(
                f"{run.paper.id}: the answer failed the checks after {attempts} "
                f"attempts: {'; '.join(i.message for i in errors_only(issues)[:3])}",
                issues=issues,
                attempts=attempts,
                last_raw=raw,
                usage=run.usage,
            )
        findings, kept = best[1], best[2]
        withheld = 0
        if findings is not None:
            withheld, kept = withhold(run.paper, findings, kept)
        if attempts < self.max_reasks + 1:
            kept.append(_reask_wanted(attempts))
        return self._result(run, "flagged", findings, kept, withheld)

    def _evaluate(
        self, paper: Paper, completion: Completion
    ) -> tuple[KeyFindings | None, list[Issue]]:
        findings, issues = parse_answer(completion.text, self._answer_type)
        if completion.finish_reason == "length":
            issues.insert(
                0,
                Issue(
                    code=IssueCode.TRUNCATED,
                    message=(
                        "the answer was cut off at the token limit; answer more briefly "
                        "(fewer, shorter findings)"
                    ),
                ),
            )
        if findings is not None:
            issues.extend(check_findings(paper, findings))
        return findings, issues

    def _result(
        self,
        run: _Run,
        status: Literal["ok", "flagged"],
        findings: KeyFindings | None,
        issues: list[Issue],
        withheld: int = 0,
    ) -> Result:
        usage = run.usage
        usage.cost_usd = self.backend.cost(usage.prompt_tokens, usage.completion_tokens)
        planted = input_issues(run.paper)
        if planted:  # the abstract itself is suspect: a person should look, whatever the answer
            status, issues = "flagged", [*issues, *planted]
        return Result(
            paper_id=run.paper.id,
            status=status,
            findings=findings,
            issues=issues,
            prompt=self.prompt.ref,
            model=self.backend.model,
            backend=self.backend.name,
            model_digest=self.backend.digest(),
            usage=usage,
            withheld=withheld,
            answers=run.answers,
            checks_version=CHECKS_VERSION,
            latency_ms=_latency(run),
        )

    def _count(self, run: _Run, completion: Completion) -> Completion:
        run.usage.prompt_tokens += completion.prompt_tokens
        run.usage.completion_tokens += completion.completion_tokens
        return completion

    # ---- drivers ----

    def _start(self, paper: Paper | Mapping[str, Any]) -> tuple[Paper, str, Result | None]:
        paper = _as_paper(paper)
        key = self.key_for(paper)
        hit = self.cache.get(key) if self.cache is not None and not self.refresh else None
        return paper, key, hit

    def _finish(self, key: str, run: _Run, result: Result) -> Result:
        if self.cache is not None:
            self.cache.put(key, result, scope=self.scope())
            self.cache.put_answers(self.answers_key(run.paper), result)
        return result

    def _replayed(self, run: _Run) -> Completion | None:
        """The next stored answer of a recheck, if any is left (already paid for)."""
        done = len(run.answers)
        if done >= len(run.replay):
            return None
        answer = run.replay[done]
        run.lap(answer)
        return Completion(answer.text, answer.finish_reason)

    def _drive(self, key: str, run: _Run) -> Result:
        session = self._session(run)

        def attempt(messages: Messages) -> Completion:
            replayed = self._replayed(run)
            if replayed is not None:
                return replayed
            run.usage.attempts += 1
            completion = self.backend.complete(messages, self._schema, self.params)
            run.lap()
            return self._count(run, completion)

        try:
            messages = next(session)
            while True:
                messages = session.send(self.retry.call(partial(attempt, messages)))
        except StopIteration as done:
            return self._finish(key, run, done.value)

    async def _adrive(self, key: str, run: _Run) -> Result:
        session = self._session(run)

        async def attempt(messages: Messages) -> Completion:
            replayed = self._replayed(run)
            if replayed is not None:
                return replayed
            run.usage.attempts += 1
            completion = await self.backend.acomplete(messages, self._schema, self.params)
            run.lap()
            return self._count(run, completion)

        try:
            messages = next(session)
            while True:
                messages = session.send(await self.retry.acall(partial(attempt, messages)))
        except StopIteration as done:
            return self._finish(key, run, done.value)

    def summarize(self, paper: Paper | Mapping[str, Any]) -> Result:
        """Key findings for one paper: from the cache, or from the model and checked."""
        paper, key, hit = self._start(paper)
        if hit is not None:
            return hit
        return self._drive(key, _Run(paper, self.prompt.render(paper)))

    async def asummarize(self, paper: Paper | Mapping[str, Any]) -> Result:
        """Async form of ``summarize`` (uses the backend's async client)."""
        paper, key, hit = self._start(paper)
        if hit is not None:
            return hit
        return await self._adrive(key, _Run(paper, self.prompt.render(paper)))

    def _recheck_run(self, paper: Paper, reask: bool, stale_only: bool) -> _Run | None:
        stored = self.cache.get_answers(self.answers_key(paper)) if self.cache else None
        if stored is None or not stored.answers:
            return None
        if stale_only and stored.checks_version == CHECKS_VERSION:
            return None
        share = round(stored.latency_ms / len(stored.answers), 1)
        return _Run(
            paper,
            self.prompt.render(paper),
            usage=stored.usage.model_copy(),
            # Answers stored before they carried their own time get an equal share.
            replay=[
                a if a.latency_ms else a.model_copy(update={"latency_ms": share})
                for a in stored.answers
            ],
            attempt_limit=None if reask else len(stored.answers),
        )

    def recheck(
        self, paper: Paper | Mapping[str, Any], *, reask: bool = False, stale_only: bool = False
    ) -> Result | None:
        """Judge the stored answers for this paper by today's checks, with no model call, and
        store the result under today's key. None when no answer is stored (or, ``stale_only``,
        when they were already judged by today's checks). A re-ask the checks would want is
        listed (issue ``reask_needed``), or made when ``reask``."""
        paper = _as_paper(paper)
        run = self._recheck_run(paper, reask, stale_only)
        return None if run is None else self._drive(self.key_for(paper), run)

    async def arecheck(
        self, paper: Paper | Mapping[str, Any], *, reask: bool = False, stale_only: bool = False
    ) -> Result | None:
        """Async form of ``recheck``."""
        paper = _as_paper(paper)
        run = self._recheck_run(paper, reask, stale_only)
        return None if run is None else await self._adrive(self.key_for(paper), run)

    def close(self) -> None:
        """Release the backend's connections, and the cache if this summarizer opened it."""
        self.backend.close()
        if self._owns_cache and self.cache is not None:
            self.cache.close()

    async def aclose(self) -> None:
        """Release the backend's async connections, in the loop that used them, then the rest."""
        await self.backend.aclose()
        self.close()

    def __enter__(self) -> Summarizer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Summarizer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class Conversation:
    """One paper's attempt loop answered from outside, for the Batch API: its answers arrive
    in bulk, hours later, so nothing can wait on a call. The same loop and checks as online."""

    def __init__(self, summarizer: Summarizer, paper: Paper) -> None:
        self.summarizer = summarizer
        self.paper = paper
        self.key = summarizer.key_for(paper)
        self.run = _Run(paper, summarizer.prompt.render(paper))
        self._session = summarizer._session(self.run)
        self.messages: Messages = next(self._session)
        self.result: Result | None = None

    @property
    def answered(self) -> int:
        """Answers received so far (0 before the first request)."""
        return len(self.run.answers)

    def answer(self, completion: Completion) -> Result | None:
        """Feed the answer to ``messages``; the checked Result once the loop ends (stored in
        the cache like any other), else None and ``messages`` holds the re-ask."""
        self.run.usage.attempts += 1
        self.run.lap()
        self.summarizer._count(self.run, completion)
        try:
            self.messages = self._session.send(completion)
        except StopIteration as done:
            self.result = self.summarizer._finish(self.key, self.run, done.value)
        return self.result


def _latency(run: _Run) -> float:
    """Wall time for a fresh result; for a re-checked one, what its answers took to get (a
    stored answer without its own time gets an equal share of the stored total)."""
    if not run.replay:
        return round((time.perf_counter() - run.started) * 1000, 1)
    return round(sum(a.latency_ms for a in run.answers), 1)


def _reask_wanted(attempts: int) -> Issue:
    return Issue(
        code=IssueCode.REASK_NEEDED,
        severity="warning",
        message=f"re-checked {attempts} stored answer(s) without asking the model again; "
        "a re-ask would be made here (keyfindings recheck --reask)",
    )


def _as_paper(paper: Paper | Mapping[str, Any]) -> Paper:
    return paper if isinstance(paper, Paper) else Paper.from_dict(paper)
