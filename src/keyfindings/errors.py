"""One error tree for everything keyfindings raises on purpose.

Callers catch ``KeyFindingsError`` for "anything we anticipated"; anything else is a bug.

    KeyFindingsError
    ├── InputError                 the paper or the input file is unusable
    │   ├── LoaderError            a file could not be read or parsed (names file and record)
    │   └── AbstractError          empty, too short or too long an abstract
    ├── PromptError                unknown prompt name/version, bad front matter, missing variable
    ├── ConfigError                contradictory or missing settings (e.g. no model to call)
    ├── ConflictError              a paper id already stands for another paper (never overwritten)
    ├── BusyError                  too much generation queued; ``retry_after`` says when to retry
    ├── StorageError               the cache or an output file cannot be used (corrupt, disk full,
    │                              or another batch is writing the same output)
    ├── ModelFileError             embedded model missing, incomplete or failing its sha256
    ├── BackendError               the model could not be reached or answered with an error
    │   ├── TransientBackendError  worth retrying: timeouts, refused connections, 408/409/429/5xx
    │   │   ├── BackendTimeoutError
    │   │   ├── BackendConnectionError
    │   │   ├── RateLimitedError   carries ``retry_after`` when the server said
    │   │   ├── ServerError
    │   │   └── FormatRejectedError  the server refused a response_format; try the next one
    │   ├── RetriesExhaustedError  the last transient error, after every attempt was spent
    │   └── RequestRejectedError   400/401/403/404/422: retrying will not help
    └── ValidationFailedError      the answer never passed the checks (carries issues, attempts,
                                   the last raw answer and usage)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from keyfindings.schema import Issue, Usage


class KeyFindingsError(Exception):
    """Base of every error keyfindings raises on purpose."""


class InputError(KeyFindingsError):
    """The paper or input file cannot be summarised as given."""


class LoaderError(InputError):
    """A file or one of its records could not be read; the message names where."""


class AbstractError(InputError):
    """The abstract is empty, too short to summarise, or too long."""


class PromptError(KeyFindingsError):
    """A prompt file is missing, malformed, or rendered without a required variable."""


class ConfigError(KeyFindingsError):
    """Settings are missing or contradict each other."""


class ConflictError(KeyFindingsError):
    """The paper's id is known (catalogue or served result) with different content."""


class BusyError(KeyFindingsError):
    """The generation queue is full; try again after ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StorageError(KeyFindingsError):
    """The cache or an output file cannot be read or written; the message says what to do."""


class ModelFileError(KeyFindingsError):
    """The embedded model's weights are missing, incomplete or corrupt."""


class BackendError(KeyFindingsError):
    """The model server or embedded model failed to give an answer."""

    def __init__(
        self, message: str, *, status_code: int | None = None, request_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.request_id = request_id

    def brief(self) -> str:
        """What happened, without the server's URL or its own words (they may carry
        credentials or internals): for error files and anyone outside the operator's log."""
        status = f" (HTTP {self.status_code})" if self.status_code else ""
        return _BRIEF.get(type(self).__name__, "the model call failed") + status


_BRIEF = {
    "BackendTimeoutError": "the model server did not answer in time",
    "BackendConnectionError": "cannot connect to the model server",
    "RateLimitedError": "the model server is rate limiting requests",
    "ServerError": "the model server failed",
    "RequestRejectedError": "the model server refused the request",
    "BatchUnansweredError": "the Batch API left the request unanswered",
}


class TransientBackendError(BackendError):
    """A fault that may pass: the retry policy tries again."""

    retry_after: float | None = None


class BackendTimeoutError(TransientBackendError):
    """The server did not answer within the timeout."""


class BackendConnectionError(TransientBackendError):
    """The server could not be reached (refused, reset, DNS)."""


class RateLimitedError(TransientBackendError):
    """HTTP 429; ``retry_after`` holds the server's Retry-After in seconds, if given."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        status_code: int | None = 429,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, request_id=request_id)
        self.retry_after = retry_after


class ServerError(TransientBackendError):
    """HTTP 408/409/5xx."""


class FormatRejectedError(TransientBackendError):
    """The server refused this ``response_format``; the next request uses the next one."""

    retry_after = 0.0


class RetriesExhaustedError(BackendError):
    """Every attempt failed with a transient error; ``last`` is the final one."""

    def __init__(self, message: str, *, attempts: int, last: TransientBackendError) -> None:
        super().__init__(message, status_code=last.status_code, request_id=last.request_id)
        self.attempts = attempts
        self.last = last

    def brief(self) -> str:
        """The last error's brief, after how many attempts."""
        return f"gave up after {self.attempts} attempts: {self.last.brief()}"


class RequestRejectedError(BackendError):
    """The server refused the request itself (bad request, auth, unknown model)."""


class BatchUnansweredError(BackendError):
    """Batch after batch came back without an answer to a request (expired, failed)."""


class ValidationFailedError(KeyFindingsError):
    """The model's answers failed the checks on every allowed attempt."""

    def __init__(
        self,
        message: str,
        *,
        issues: list[Issue],
        attempts: int,
        last_raw: str | None,
        usage: Usage,
    ) -> None:
        super().__init__(message)
        self.issues = issues
        self.attempts = attempts
        self.last_raw = last_raw
        self.usage = usage
