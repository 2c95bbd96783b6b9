"""The "AI Key Findings" button: single-flight generation, the HTTP app and its demo page."""

from __future__ import annotations

from keyfindings.service.flight import Failed, FindingsService, Pending

__all__ = ["Failed", "FindingsService", "Pending"]
