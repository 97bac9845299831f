"""Run a template's function in this process, the way Lambda would run it in a container.

The handler module is loaded by file path under a unique module name (``erpsync_fn_orders``
for ``OrdersFunction``), so every function's ``app.py`` can live side by side in one process,
and one file serving several functions (``functions/flow/app.py``) is loaded once per function.
The layers' import paths go on ``sys.path`` (like ``/opt/python``) and the function's
environment from the template is applied to ``os.environ`` before it is loaded and before each
invocation. All functions share one process: the variables of the Globals agree, and one that
differs between functions (``FLOW``) must be read when the handler module is imported, which
happens with that function's environment in place (one import at a time).

Timeouts: each invocation gets a context whose ``get_remaining_time_in_millis`` counts down from
the template's ``Timeout``, so the handler's own deadline works as on Lambda. The timeout is not
enforced (a thread cannot be killed): every invocation is recorded (:class:`Invocation`: start,
duration, timeout, container) in ``LocalFunction.history``, and ``overruns()`` lists those that ran
past their timeout, where Lambda would have stopped them; a check can then fail on them.

Containers: Lambda runs one invocation at a time per execution environment and starts another
for a concurrent one (a schedule firing while a batch runs, several batches of one event source).
In one process every "container" shares the modules, so an invocation running beside another
takes its own :class:`Container` from the function's pool, and what a container keeps to itself
on Lambda is kept per container here: the names in ``CONTAINER_SCOPED`` (the flow runtime of the
layer, which holds the invocation's deadline, clients and sessions). Without that, two
concurrent invocations would share one deadline, and the one that finished first would clear it
for the other.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import re
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from sandbox.local.template import FunctionSpec, LayerSpec

log = logging.getLogger("erpsync.local.lambda")

Handler = Callable[[dict[str, Any], Any], Any]

_IMPORT_LOCK = threading.Lock()
"""One handler import at a time: each runs with its own function's environment in ``os.environ``."""

CONTAINER_SCOPED: tuple[tuple[str, str], ...] = (("erpsync.runtime.lambda_app", "runtime"),)
"""Cached module functions (``functools.lru_cache``) whose results a Lambda container keeps to
itself: called during an invocation they answer from the invocation's container; called outside
one (the CLI, a test), from the process-wide cache as before."""

_CURRENT = threading.local()


class Container:
    """One execution environment of a function: what stays warm between its invocations."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.busy = False
        self.invocations = 0
        self.cache: dict[tuple[Any, ...], Any] = {}


def current_container() -> Container | None:
    """The container of the invocation running on this thread (None outside an invocation)."""
    container: Container | None = getattr(_CURRENT, "container", None)
    return container


def _scope_to_containers() -> None:
    """Wrap each loaded ``CONTAINER_SCOPED`` function (once) so an invocation gets its container's own."""
    for module_name_, attr in CONTAINER_SCOPED:
        module = sys.modules.get(module_name_)
        shared = getattr(module, attr, None) if module is not None else None
        if shared is None or getattr(shared, "_local_container_scoped", False):
            continue
        make = getattr(shared, "__wrapped__", None)
        if make is None:
            continue

        def scoped(*args: Any, _shared: Any = shared, _make: Any = make, _key: str = attr) -> Any:
            box = current_container()
            if box is None:
                return _shared(*args)
            key = (_key, *args)
            if key not in box.cache:
                box.cache[key] = _make(*args)
            return box.cache[key]

        functools.update_wrapper(scoped, shared)
        scoped.cache_clear = shared.cache_clear  # type: ignore[attr-defined]
        scoped.cache_info = shared.cache_info  # type: ignore[attr-defined]
        scoped._local_container_scoped = True  # type: ignore[attr-defined]
        setattr(module, attr, scoped)


class LambdaContext:
    """The context object a Python handler receives (the attributes Powertools reads)."""

    def __init__(self, fn: FunctionSpec, region: str = "us-east-1") -> None:
        self.function_name = fn.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = fn.arn
        self.memory_limit_in_mb = fn.memory_size
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{fn.name}"
        self.log_stream_name = time.strftime("%Y/%m/%d") + "/[$LATEST]" + uuid.uuid4().hex
        self.identity = None
        self.client_context = None
        self.timeout_s = fn.timeout
        self._deadline = time.monotonic() + fn.timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def module_name(logical_id: str) -> str:
    """``OrdersFunction`` -> ``erpsync_fn_orders``."""
    base = logical_id.removesuffix("Function") or logical_id
    return "erpsync_fn_" + re.sub(r"(?<!^)(?=[A-Z])", "_", base).lower()


def add_layers_to_path(layers: list[LayerSpec]) -> list[str]:
    """Put each layer's import path on ``sys.path`` (once); the paths added."""
    added = []
    for layer in layers:
        path = str(layer.import_path)
        if Path(path).is_dir() and path not in sys.path:
            sys.path.insert(0, path)
            added.append(path)
    return added


@dataclass
class Invocation:
    """One call of a function: when, how long against its timeout, in which container, how it ended."""

    request_id: str
    duration_ms: int
    error: str | None = None
    function: str = ""
    started_at: float = 0.0
    """Epoch seconds."""
    timeout_s: float = 0.0
    container: int = 0
    kind: str = ""
    """What the event was: ``sqs`` (with the record count), ``schedule``, ``api`` or ``direct``."""
    at_timeout: list[str] = field(default_factory=list)
    """Where the handler was when its timeout passed (innermost frames last; empty: it ended in time)."""

    @property
    def duration_s(self) -> float:
        return self.duration_ms / 1000.0

    @property
    def overran(self) -> bool:
        return self.duration_s > self.timeout_s


def _where(thread_id: int, into: list[str]) -> None:
    """The frames of ``thread_id`` now (file:line function), the project's own and the innermost."""
    frame = sys._current_frames().get(thread_id)
    if frame is None:
        return
    rows = [f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in traceback.extract_stack(frame)]
    into.extend(rows[-12:])


def event_kind(event: Any) -> str:
    if isinstance(event, dict):
        if isinstance(event.get("Records"), list):
            return f"sqs x{len(event['Records'])}"
        if "requestContext" in event:
            return "api"
        if event.get("source") == "aws.events" or "erpsync" in event:
            return "schedule" if event.get("erpsync") in (None, "poll", "sweep") else "direct"
    return "direct"


@dataclass
class LocalFunction:
    """A template function, loaded lazily (first invocation = cold start)."""

    spec: FunctionSpec
    region: str = "us-east-1"
    invocations: int = 0
    errors: int = 0
    last: Invocation | None = None
    history: list[Invocation] = field(default_factory=list, repr=False)
    """Every invocation, in the order they ended."""
    _containers: list[Container] = field(default_factory=list, repr=False)
    _handler: Handler | None = field(default=None, repr=False)
    _module: ModuleType | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def module_name(self) -> str:
        return module_name(self.spec.logical_id)

    @property
    def module(self) -> ModuleType | None:
        """The loaded handler module (None before the first invocation)."""
        return self._module

    def apply_environment(self) -> None:
        os.environ.update(self.spec.environment)

    def load(self) -> Handler:
        """Import the handler module (once) with the function's environment applied."""
        with self._lock, _IMPORT_LOCK:
            if self._handler is None:
                self.apply_environment()
                path = self.spec.handler_file
                if not path.is_file():
                    raise FileNotFoundError(f"{self.spec.logical_id}: handler file {path} not found")
                spec = importlib.util.spec_from_file_location(self.module_name, path)
                if spec is None or spec.loader is None:
                    raise ImportError(f"cannot load {path}")
                module = importlib.util.module_from_spec(spec)
                sys.modules[self.module_name] = module
                try:
                    spec.loader.exec_module(module)
                except BaseException:
                    sys.modules.pop(self.module_name, None)
                    raise
                handler = getattr(module, self.spec.handler_attr, None)
                if not callable(handler):
                    raise AttributeError(f"{path} has no callable {self.spec.handler_attr!r}")
                self._module, self._handler = module, handler
            return self._handler

    @property
    def containers(self) -> int:
        """Containers started so far (the most invocations that ran at once)."""
        return len(self._containers)

    def _take_container(self) -> Container:
        with self._lock:
            box = next((c for c in self._containers if not c.busy), None)
            if box is None:
                box = Container(len(self._containers) + 1)
                self._containers.append(box)
            box.busy = True
            box.invocations += 1
            return box

    def _give_back(self, box: Container) -> None:
        with self._lock:
            box.busy = False

    def overruns(self) -> list[Invocation]:
        """The invocations that ran past their timeout (Lambda would have stopped them)."""
        return [i for i in list(self.history) if i.overran]

    def invoke(self, event: dict[str, Any]) -> Any:
        """Call the handler with ``event`` and a fresh context in a free container; exceptions
        propagate (after counting). Every invocation is recorded in ``history``."""
        handler = self.load()
        _scope_to_containers()
        self.apply_environment()
        box = self._take_container()
        ctx = LambdaContext(self.spec, self.region)
        outer = current_container()
        _CURRENT.container = box
        started_at, started = time.time(), time.monotonic()
        self.invocations += 1
        error: str | None = None
        where: list[str] = []
        watchdog = threading.Timer(float(self.spec.timeout), _where, args=(threading.get_ident(), where))
        watchdog.daemon = True
        watchdog.start()
        try:
            return handler(event, ctx)
        except Exception as exc:
            self.errors += 1
            error = repr(exc)
            log.exception("%s failed (request %s)", self.spec.logical_id, ctx.aws_request_id)
            raise
        finally:
            watchdog.cancel()
            elapsed = time.monotonic() - started
            _CURRENT.container = outer
            self._give_back(box)
            self.last = Invocation(
                ctx.aws_request_id,
                int(elapsed * 1000),
                error,
                function=self.spec.logical_id,
                started_at=started_at,
                timeout_s=float(self.spec.timeout),
                container=box.number,
                kind=event_kind(event),
                at_timeout=where,
            )
            with self._lock:
                self.history.append(self.last)
            if elapsed > self.spec.timeout:
                log.warning(
                    "%s ran %.1fs, over its %ss timeout (Lambda would have stopped it)",
                    self.name,
                    elapsed,
                    self.spec.timeout,
                )

    def unload(self) -> None:
        """Forget the module and the containers (the next invocation is a cold start)."""
        with self._lock:
            sys.modules.pop(self.module_name, None)
            self._module = self._handler = None
            self._containers = []
