"""Text that is not what it claims to be: instructions planted in an abstract, markup in answers.

An abstract is data. A sentence addressed to the model ("Ignore previous instructions and …")
is never evidence for a finding, and its presence flags the result for a person to look at,
whatever the model did with it. Findings are plain text: a tag, a script URL or a Markdown link
in one did not come from the abstract.
"""

from __future__ import annotations

import re
from functools import lru_cache

from keyfindings.checks.context import Claim, Problem
from keyfindings.paper import Paper
from keyfindings.schema import Issue, IssueCode

_OBJECT = r"(?:instructions?|prompts?|rules|directions|guidelines|context|everything)"
_INSTRUCTION = re.compile(
    # "Ignore (all) (the) previous instructions", "disregard the above", "forget everything"
    r"\b(?:ignore|disregard|forget|override)\s+(?:(?:all|any|the|your|these|those|of)\s+)*"
    r"(?:(?:previous|prior|above|earlier|preceding|system|original|other)\s+)?"
    + _OBJECT
    + r"|\b(?:ignore|disregard)\s+(?:(?:all|everything)\s+)?(?:the\s+)?above\b"
    # "You are now an AI assistant", "act as ChatGPT"
    r"|\b(?:you\s+are(?:\s+now)?|act\s+as|pretend\s+to\s+be)\s+(?:an?\s+)?"
    r"(?:ai|assistant|language\s+model|chatbot|chatgpt|gpt|llm)\b"
    r"|\b(?:as\s+an?\s+(?:ai|language\s+model))\b"
    r"|\b(?:system\s+prompt|developer\s+message|jailbreak)\b"
    # imperatives to whoever writes the summary: "Respond only with …", "Do not mention …"
    r"|^(?:please\s+)?(?:respond|reply|output|print|return|write|say|state|report|summari[sz]e|"
    r"include|do\s+not|don't|never|always)\b[^.]{0,80}\b(?:summary|key\s+findings|findings|"
    r"instructions|assistant|model|output|json|you|your)\b",
    re.I,
)
_MARKUP = re.compile(
    r"</?[A-Za-z][\w:-]*(?:\s[^<>]*)?/?>"  # a tag
    r"|\b(?:javascript|vbscript)\s*:|\bdata:[a-z]+/"  # a script or data URL
    r"|\]\(\s*[^)\s]+\s*\)"  # a Markdown link or image
    r"|\b(?:https?|ftp)://",
    re.I,
)


def instruction_sentences(paper: Paper) -> list[int]:
    """Numbers of the abstract's sentences that read as instructions to a model (asked for
    every answer and again for the result, so computed once per abstract)."""
    return list(_planted(tuple(s.text for s in paper.sentences)))


@lru_cache(maxsize=1024)
def _planted(sentences: tuple[str, ...]) -> tuple[int, ...]:
    return tuple(n for n, text in enumerate(sentences, 1) if _INSTRUCTION.search(text))


def input_issues(paper: Paper) -> list[Issue]:
    """Problems with the paper itself, whatever the answer: they flag the result, and asking
    the model again cannot fix them."""
    planted = instruction_sentences(paper)
    if not planted:
        return []
    where = ", ".join(f"S{n}" for n in planted)
    return [
        Issue(
            code=IssueCode.INSTRUCTION_IN_ABSTRACT,
            message=f"{where} of the abstract read as instructions to the model, not findings; "
            "they are not used as evidence and the result needs a person's review",
        )
    ]


def markup(claim: Claim) -> list[Problem]:
    """A finding with HTML, a script URL or a link: findings are plain text from the abstract."""
    found = _MARKUP.search(claim.text)
    if found is None:
        return []
    return [
        Problem(
            IssueCode.MARKUP,
            f'contains markup or a link ("{found.group(0)[:30]}"); write plain text only',
        )
    ]
