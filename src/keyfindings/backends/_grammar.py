"""A llama.cpp grammar (GBNF) for flat JSON answers whose text fields are capped in sentences.

Small models asked for "one sentence" copy whole abstract sections anyway, and every extra token
costs ~80 ms on 2 cores. A ``maxSentences`` cap in the answer schema becomes a grammar that
closes the string after that many complete sentences, so the model stops on a sentence boundary
instead of being cut mid-word by ``maxLength`` or a token limit.
"""

from __future__ import annotations

import json
from typing import Any

# Bump when the grammar changes what the model can write: part of the local model's identity,
# hence of every cache key.
GRAMMAR_VERSION = "2"
# A sentence: text without quotes, backslashes or control characters, in which a period is
# followed only by a digit (decimals such as 0.78), ending in a period. (v1 allowed any
# non-space after a period, and the model glued sentences together: "steps.analgesic use".)
_RULES = r"""
sentence ::= [^ ."\\\x00-\x1f] ([^."\\\x00-\x1f] | "." [0-9])* "."
ws ::= [ \n]? [ \n]?
"""


def has_sentence_caps(schema: dict[str, Any]) -> bool:
    """True when some property of the answer schema carries ``maxSentences``."""
    return any("maxSentences" in p for p in schema.get("properties", {}).values())


def _literal(text: str) -> str:
    return json.dumps(json.dumps(text))


def _value_rule(name: str, prop: dict[str, Any]) -> str:
    if "enum" in prop:
        return f"v-{name} ::= " + " | ".join(_literal(v) for v in prop["enum"])
    if prop.get("type") != "string":
        raise ValueError(f"sentence-capped grammar: property {name!r} must be a string or enum")
    cap = int(prop.get("maxSentences", 3))
    body = "sentence" + ' (" " sentence)?' * (cap - 1)
    return f'v-{name} ::= "\\"" ({body})? "\\""'


def sentence_capped_gbnf(schema: dict[str, Any]) -> str:
    """GBNF for an object with the schema's properties, in order, all required."""
    props: dict[str, dict[str, Any]] = schema["properties"]
    rules = [_value_rule(name.replace("_", "-"), prop) for name, prop in props.items()]
    members = ' "," ws '.join(
        f'{_literal(name)} ws ":" ws v-{name.replace("_", "-")}' for name in props
    )
    root = f'root ::= "{{" ws {members} ws "}}"'
    return "\n".join([root, *rules, _RULES.strip()]) + "\n"


def without_sentence_caps(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema minus ``maxSentences`` (a keyword only this grammar understands)."""
    if not has_sentence_caps(schema):
        return schema
    properties = {
        name: {k: v for k, v in prop.items() if k != "maxSentences"}
        for name, prop in schema["properties"].items()
    }
    return {**schema, "properties": properties}
