"""Logging: in Lambda one JSON object per line (Powertools Logger) for CloudWatch Logs Insights,
personal data masked everywhere.

**In Lambda** (``AWS_LAMBDA_FUNCTION_NAME`` set, or ``ERPSYNC_LOG_FORMAT=json``) the ``erpsync``
logger, parent of every ``erpsync.*`` logger, gets Powertools' JSON handler of its own. The Lambda
runtime puts a plain-text handler on the root logger before the handler module is imported, so
a formatter that waits for an empty root never starts; here the root's handlers are told to let
``erpsync`` records pass by (no plain-text twin), whatever they are and whenever they came
(``install`` runs at import and again at every invocation). Each line carries:

- Powertools' keys: ``level``, ``location``, ``message``, ``timestamp``, ``service``, ``cold_start``,
  ``function_name``, ``function_request_id``, ``function_arn``, ``function_memory_size``,
  ``xray_trace_id``, ``exception``/``exception_name``/``stack_trace`` when there is one;
- ``logger`` (``erpsync.worker``, ``erpsync.webhooks``, ...);
- the keys of the record being worked (``record_context``): ``flow``, ``record`` (the source id),
  ``connection`` (the source connection) and ``correlation_id``;
- what the call site adds with ``extra={...}``: the worker's ``outcome``, ``error_type``,
  ``attempt``, ``duration_ms``, ``target_id``; a queued notice's ``via`` (webhook, poll, sweep).

A **correlation id** is made where a notice is made (``Correlation``: the webhook, the poll, the
sweep), travels in the SQS message body beside the notice (``queues.send_notices``, the worker's
``Envelope``, re-queues and the failed queue alike) and is on every line of the record's processing.

**Elsewhere** (the local stack, the CLI, tests) the root's handlers print ``erpsync`` records as
they were configured to (JSON lines when nothing was configured), masked.

Masking (``erpsync.masking``): emails keep their first letter and domain, phones their last two
digits, and names, street lines, postcodes and phone fields are hidden, in the message and in
every string a line carries.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar

from erpsync.masking import EMAIL, PHONE, mask, mask_value

if TYPE_CHECKING:
    from erpsync.runtime.queues import Notice

__all__ = [
    "EMAIL",
    "PHONE",
    "Correlation",
    "JsonFormatter",
    "MaskingFilter",
    "install",
    "mask",
    "new_correlation_id",
    "observed",
    "record_context",
]

SERVICE = "erpsync"
"""The parent logger of every ``erpsync.*`` logger, and the ``service`` of every JSON line."""
R = TypeVar("R")

log = logging.getLogger("erpsync.notices")

_context: ContextVar[dict[str, Any] | None] = ContextVar("erpsync_log_context", default=None)
_powertools: Any = None
"""The Powertools Logger once installed (JSON mode)."""
_installing = threading.Lock()


def json_mode() -> bool:
    """JSON lines through Powertools: in Lambda, or when ``ERPSYNC_LOG_FORMAT=json``."""
    chosen = os.environ.get("ERPSYNC_LOG_FORMAT", "").lower()
    if chosen in ("json", "text"):
        return chosen == "json"
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


# -- what every line of a record carries ------------------------------------------------------------


def new_correlation_id() -> str:
    return str(uuid.uuid4())


@contextmanager
def record_context(**keys: Any) -> Iterator[None]:
    """Every line logged in this block (in this thread) carries ``keys`` (flow, record,
    connection, correlation_id), unless the call gives its own."""
    current = _context.get() or {}
    token = _context.set({**current, **{k: v for k, v in keys.items() if v not in (None, "")}})
    try:
        yield
    finally:
        _context.reset(token)


def current_context() -> dict[str, Any]:
    return dict(_context.get() or {})


class ContextFilter(logging.Filter):
    """Puts the record context (and the logger's name as ``logger``) on each record it sees."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_context.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        if not hasattr(record, "logger"):
            record.logger = record.name
        return True


class MaskingFilter(logging.Filter):
    """Masks the formatted message of every record that passes through a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


class Correlation:
    """Correlation ids for the notices one caller (``via``: webhook, poll, sweep) is queuing.

    Given to ``queues.send_notices`` as ``correlate``: each notice gets a new id in its message
    body; ``queued()`` then logs one line per notice sent (flow, record, connection, correlation
    id, ``outcome`` queued), so a record's history starts where its notice was made.
    """

    def __init__(self, flow: str, via: str) -> None:
        self.flow, self.via = flow, via
        self.pending: list[tuple[Notice, str]] = []

    def __call__(self, notice: Notice) -> str:
        cid = new_correlation_id()
        self.pending.append((notice, cid))
        return cid

    def queued(self) -> int:
        """Log the notices sent since the last call; how many."""
        sent, self.pending = self.pending, []
        for notice, cid in sent:
            log.info(
                "%s %s %s: queued by the %s",
                self.flow,
                notice.entity,
                notice.id,
                self.via,
                extra={
                    "flow": self.flow,
                    "record": notice.id,
                    "connection": notice.source,
                    "correlation_id": cid,
                    "outcome": "queued",
                    "via": self.via,
                },
            )
        return len(sent)


# -- formatters and handlers ------------------------------------------------------------------------

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
_OWN_KEYS = frozenset(
    {"level", "logger", "timestamp", "location", "service", "cold_start", "function_name", "function_arn"}
    | {"function_memory_size", "function_request_id", "xray_trace_id", "sampling_rate", "correlation_id"}
    | {"flow", "connection", "outcome", "error_type", "attempt", "duration_ms", "via"}
)
"""Keys whose values erpsync or Powertools make from ids and codes, never from a record's content."""


class JsonFormatter(logging.Formatter):
    """``{"level", "logger", "message", ...extras}`` on one line (outside Lambda, when nothing else
    formats the root's output)."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": mask(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                doc[key] = mask_value(value)
        if record.exc_info:
            doc["exception"] = mask(self.formatException(record.exc_info))
        return json.dumps(doc, default=str)


class _Stdout(logging.StreamHandler):
    """Writes to ``sys.stdout`` as it is at each line (the runtime, or a test, may replace it)."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout
        super().emit(record)


def _powertools_logger(level: str) -> Any:
    """The Powertools Logger of ``erpsync``: JSON lines, masked, on a handler of its own."""
    from aws_lambda_powertools.logging import Logger
    from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

    class MaskingJsonFormatter(LambdaPowertoolsFormatter):
        """Powertools' JSON line with every string in it masked (but the keys we write ourselves)."""

        def serialize(self, log: Any) -> str:
            return super().serialize({k: v if k in _OWN_KEYS else mask_value(v) for k, v in log.items()})

    handler = _Stdout()
    handler.addFilter(ContextFilter())
    return Logger(
        service=SERVICE,
        level=level,
        logger_handler=handler,
        logger_formatter=MaskingJsonFormatter(
            utc=True, use_rfc3339=True, log_record_order=["level", "logger", "message", "timestamp"]
        ),
    )


def install(level: str = "INFO", json_lines: bool | None = None) -> Any:
    """Set logging up (idempotent; cheap when already done). Returns the Powertools Logger in
    JSON mode (``json_mode()``, or ``json_lines``), else None.

    JSON mode: the ``erpsync`` logger gets Powertools' handler (once) and every root handler,
    whenever it was added, lets ``erpsync`` records pass by. Otherwise: the root's handlers as
    configured (JSON lines when there were none), each masking and adding the record context.
    """
    global _powertools
    root = logging.getLogger()
    use_json = json_mode() if json_lines is None else json_lines
    if use_json:
        from aws_lambda_powertools.logging.filters import SuppressFilter

        own = logging.getLogger(SERVICE)
        with _installing:
            if _powertools is None or _powertools.registered_handler not in own.handlers:
                _forget_powertools(own)
                _powertools = _powertools_logger(level)
        for handler in root.handlers:
            if not any(isinstance(f, SuppressFilter) for f in handler.filters):
                handler.addFilter(SuppressFilter(SERVICE))
    elif not root.handlers:
        logging.basicConfig(level=level)
        for handler in root.handlers:
            handler.setFormatter(JsonFormatter())
    if not use_json:
        root.setLevel(level)
    for handler in root.handlers:
        if not any(isinstance(f, MaskingFilter) for f in handler.filters):
            handler.addFilter(MaskingFilter())
        if not any(isinstance(f, ContextFilter) for f in handler.filters):
            handler.addFilter(ContextFilter())
    return _powertools if use_json else None


def _forget_powertools(own: logging.Logger) -> None:
    """Remove Powertools' handler and marks from the ``erpsync`` logger (a fresh container)."""
    for handler in list(own.handlers):
        if isinstance(handler, _Stdout):
            own.removeHandler(handler)
    for attr in ("init", "powertools_handler", "powertools_buffer_config", "powertools_buffer_cache"):
        if hasattr(own, attr):
            delattr(own, attr)


def reset() -> None:
    """Undo ``install`` (tests; what a new container starts from)."""
    global _powertools
    _forget_powertools(logging.getLogger(SERVICE))
    _powertools = None
    for handler in logging.getLogger().handlers:
        for f in list(handler.filters):
            if isinstance(f, MaskingFilter | ContextFilter) or type(f).__name__ == "SuppressFilter":
                handler.removeFilter(f)


# -- one invocation ---------------------------------------------------------------------------------


def _lambda_context(context: Any) -> bool:
    return all(
        hasattr(context, a) for a in ("aws_request_id", "function_name", "invoked_function_arn", "memory_limit_in_mb")
    )


def observed(handler: Callable[[dict[str, Any], Any], R], **keys: Any) -> Callable[[dict[str, Any], Any], R]:
    """``handler`` as a Lambda entry point the operator can follow: logging set up (JSON in Lambda),
    cold start and request id on every line (Powertools' ``inject_lambda_context``), ``keys`` (such
    as the flow) too, and the invocation's metrics flushed at its end (``runtime.metrics``)."""

    @functools.wraps(handler)
    def run(event: dict[str, Any], context: Any) -> R:
        logger = install(os.environ.get("LOG_LEVEL", "INFO"))
        try:
            with record_context(**keys):
                if logger is not None and _lambda_context(context):
                    injected: Callable[[dict[str, Any], Any], R] = logger.inject_lambda_context(
                        handler, clear_state=True
                    )
                    return injected(event, context)
                return handler(event, context)
        finally:
            from erpsync.runtime import metrics

            metrics.flush()

    return run
