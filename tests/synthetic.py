"""Synthetic papers and a scripted server handler that answers them correctly (or not, on cue)."""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from tests.scripted_server import Reply, chat, error


def paper(i: int) -> dict[str, Any]:
    return {
        "id": f"syn-{i}",
        "title": f"Synthetic paper {i}",
        "abstract": (
            f"BACKGROUND: Condition {i} is common and poorly treated. METHODS: We randomised "
            f"{100 + i} adults with condition {i} to drug X{i} or placebo for 12 weeks. "
            f"RESULTS: Symptoms improved by {10 + i % 50}% with drug X{i} compared with placebo "
            f"(p = 0.0{1 + i % 9}). CONCLUSIONS: Drug X{i} relieved symptoms of condition {i}."
        ),
    }


def write_jsonl(path: Path, ids: range | list[int]) -> Path:
    path.write_text("".join(json.dumps(paper(i)) + "\n" for i in ids))
    return path


_SENTENCE = re.compile(r"^\[S(\d+)\] (.*)$", re.M)
_TITLE = re.compile(r"Title: Synthetic paper (\d+)")


def good_answer(user_message: str) -> dict[str, Any]:
    sentences = dict((int(n), text) for n, text in _SENTENCE.findall(user_message))

    def finding(n: int) -> list[dict[str, Any]]:
        return [{"text": sentences[n], "evidence": [n]}]

    return {
        "study_type": "randomized_controlled_trial",
        "methodology": finding(2),
        "results": finding(3),
        "significance": finding(4),
        "limitations": [],
    }


class FaultyHandler:
    """Correct answers, with faults on cue by paper number (first attempt only, unless fatal)."""

    def __init__(self, *, delay: float = 0.0, faults: bool = True) -> None:
        self.delay = delay
        self.faults = faults
        self.attempts: Counter[int] = Counter()
        self.order: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> Reply:
        if "messages" not in body:  # a request cut short by a killed client
            return error(400, "incomplete request")
        user = body["messages"][1]["content"]
        number = int(_TITLE.search(user).group(1))  # type: ignore[union-attr]
        with self.lock:
            self.attempts[number] += 1
            self.order.append(number)
            first = self.attempts[number] == 1
        reply = self._reply(number, first, user, len(body["messages"]))
        reply.delay = max(reply.delay, self.delay)
        return reply

    def _reply(self, number: int, first: bool, user: str, n_messages: int) -> Reply:
        if self.faults:
            if number % 50 == 7:
                return error(500, "this paper always fails")
            if first and number % 10 == 1:
                return error(429, "rate limited", **{"retry-after": "0.05"})
            if first and number % 10 == 2:
                return error(503, "overloaded")
            if first and number % 10 == 3:
                return chat("{ not json")
            if first and number % 10 == 4:
                return Reply(delay=3.0, body=good_answer(user))
        return chat(good_answer(user))


def stalling(answer: FaultyHandler, after: int, release: threading.Event) -> Any:
    """A handler that answers ``after`` requests, then holds every further one until
    ``release`` is set (60 s at most): the run is mid-way whatever the machine's speed."""

    def handler(body: dict[str, Any]) -> Reply:
        if len(answer.order) >= after:
            release.wait(timeout=60)
        return answer(body)

    return handler
