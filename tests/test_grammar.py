"""The sentence-capped grammar, parsed by llama.cpp's own grammar parser (no model needed)."""

from __future__ import annotations

import pytest

from keyfindings.backends._grammar import (
    has_sentence_caps,
    sentence_capped_gbnf,
    without_sentence_caps,
)
from keyfindings.schema import TextAnswer, strict_json_schema


def capped() -> dict:  # type: ignore[type-arg]
    schema = strict_json_schema(TextAnswer)
    for name, cap in {"methodology": 2, "results": 3, "significance": 1}.items():
        schema["properties"][name]["maxSentences"] = cap
    return schema


def test_grammar_shape_and_llama_cpp_accepts_it() -> None:
    llama_grammar = pytest.importorskip("llama_cpp.llama_grammar")
    text = sentence_capped_gbnf(capped())
    assert 'v-methodology ::= "\\"" (sentence (" " sentence)?)? "\\""' in text
    assert 'v-results ::= "\\"" (sentence (" " sentence)? (" " sentence)?)? "\\""' in text
    assert '"\\"narrative_review\\""' in text
    llama_grammar.LlamaGrammar.from_string(text, verbose=False)


def test_caps_are_stripped_for_servers() -> None:
    schema = capped()
    assert has_sentence_caps(schema)
    plain = without_sentence_caps(schema)
    assert not has_sentence_caps(plain) and plain == strict_json_schema(TextAnswer)
    assert has_sentence_caps(schema)  # the original is untouched


def test_non_string_fields_are_refused() -> None:
    schema = {"properties": {"a": {"type": "array", "maxSentences": 1}}}
    with pytest.raises(ValueError, match="must be a string"):
        sentence_capped_gbnf(schema)
