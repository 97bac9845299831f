"""The error model: what a flow raises decides what happens to the record.

- ``RetryableError``: try again later (network, timeout, 429, 5xx, lock contention).
- ``PermanentError``: retrying will not help (bad data, missing mapping, unknown SKU);
  the record goes to the failed queue at once with the reason.
- ``OutageError``: the remote system is down as a whole; the record waits without
  spending its attempts.
"""

from __future__ import annotations


class SyncError(Exception):
    """Base of every error a flow reports. ``error_type`` is a stable, short code."""

    error_type = "error"

    def __init__(self, message: str, *, error_type: str | None = None, system: str | None = None) -> None:
        super().__init__(message)
        if error_type:
            self.error_type = error_type
        self.system = system

    @property
    def message(self) -> str:
        return str(self)


class RetryableError(SyncError):
    """A failure that may pass on its own; ``retry_after`` (seconds) when the remote said so."""

    error_type = "retryable"

    def __init__(
        self,
        message: str,
        *,
        error_type: str | None = None,
        system: str | None = None,
        retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, error_type=error_type, system=system)
        self.retry_after = retry_after
        self.status = status


class RateLimitedError(RetryableError):
    """The remote answered 429."""

    error_type = "rate_limited"


class OutageError(RetryableError):
    """The remote system is unreachable or failing everything; not the record's fault."""

    error_type = "outage"


class PermanentError(SyncError):
    """Retrying will not help; the record needs a fix (data, mapping, settings)."""

    error_type = "permanent"


class ValidationFailed(PermanentError):
    """The remote rejected the record's data (e.g. Acumatica 422, Magento 400)."""

    error_type = "validation"


class UnknownItemError(PermanentError):
    """A line names an item the target system does not have."""

    error_type = "unknown_item"


class MappingMissing(PermanentError):
    """A setting or cross-reference needed to map the record is missing."""

    error_type = "mapping_missing"


class NotFoundError(PermanentError):
    """The record asked for does not exist in the source system."""

    error_type = "not_found"


class AuthError(RetryableError):
    """Credentials were refused, also after the secret was read again: the system is closed to us
    until an operator fixes the secret. Not the record's fault: no attempt is spent, the breaker
    opens for every worker, and the records go through by themselves once the secret is fixed."""

    error_type = "auth"


NO_ANSWER_STATUSES = (502, 504)
"""A gateway answered for the system: the request may have reached it and may still be applied."""


def may_have_been_applied(exc: BaseException) -> bool:
    """Whether a write that failed with ``exc`` may have been applied, or may still be: no answer
    came (a timeout, a dropped connection) or a gateway answered for the system (502, 504). A refusal
    (429, 503, credentials), a request never sent (no time left, no connection) and an answer from
    the system itself are not."""
    if not isinstance(exc, RetryableError) or isinstance(exc, (RateLimitedError, OutageError, AuthError)):
        return False
    if exc.error_type == "budget":
        return False
    return exc.status is None or exc.status in NO_ANSWER_STATUSES
