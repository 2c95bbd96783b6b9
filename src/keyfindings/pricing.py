"""Model prices, online and through the Batch API, in one table an operator can override.

List prices change; a JSON file named by ``KEYFINDINGS_PRICES`` replaces or adds entries
(``{"gpt-4o-mini": {"input": 0.15, "output": 0.6, "batch_input": 0.075, "batch_output": 0.3}}``,
USD per million tokens; the batch prices default to half the online ones). Estimates only.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from keyfindings.errors import ConfigError

PRICES_ENV = "KEYFINDINGS_PRICES"


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float
    batch_input: float
    batch_output: float

    @classmethod
    def online(cls, input: float, output: float) -> Price:
        """A price whose Batch API rate is half the online one (OpenAI's rule today)."""
        return cls(input, output, input / 2, output / 2)


PRICES: dict[str, Price] = {
    "gpt-4o-mini": Price.online(0.15, 0.60),
    "gpt-4o": Price.online(2.50, 10.00),
    "gpt-4.1": Price.online(2.00, 8.00),
    "gpt-4.1-mini": Price.online(0.40, 1.60),
    "gpt-4.1-nano": Price.online(0.10, 0.40),
}


@cache
def _overrides(path: str) -> dict[str, Price]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return {
            model: Price(
                float(p["input"]),
                float(p["output"]),
                float(p.get("batch_input", float(p["input"]) / 2)),
                float(p.get("batch_output", float(p["output"]) / 2)),
            )
            for model, p in data.items()
        }
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ConfigError(
            f"{PRICES_ENV}={path}: not a price table ({type(exc).__name__}: {exc}); expected "
            '{"model": {"input": USD per 1M tokens, "output": ...}}'
        ) from None


def price(model: str) -> Price | None:
    """The model's price: the override file's entry, else the built-in one, else None."""
    path = os.environ.get(PRICES_ENV)
    if path and model in _overrides(path):
        return _overrides(path)[model]
    return PRICES.get(model)


def cost(
    model: str, prompt_tokens: int, completion_tokens: int, *, batch: bool = False
) -> float | None:
    """Estimated USD for these tokens; None for a model without a known price."""
    p = price(model)
    if p is None:
        return None
    rates = (p.batch_input, p.batch_output) if batch else (p.input, p.output)
    return (prompt_tokens * rates[0] + completion_tokens * rates[1]) / 1_000_000
