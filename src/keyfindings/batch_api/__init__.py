"""Catalogue runs through the OpenAI Batch API (half the price, the provider's own scale)."""

from keyfindings.batch_api.files import Limits
from keyfindings.batch_api.run import (
    BatchApiOptions,
    batch_priced,
    cancel_batch_api,
    run_batch_api,
    state_dir,
)

__all__ = [
    "BatchApiOptions",
    "Limits",
    "batch_priced",
    "cancel_batch_api",
    "run_batch_api",
    "state_dir",
]
