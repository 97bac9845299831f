"""Run a template's function in this process, the way Lambda would run it in a container.

The handler module is loaded by file path under a unique module name (``erpsync_fn_orders``
for ``OrdersFunction``), so every function's ``app.py`` can live side by side in one process,
and one file serving several functions (``functions/flow/app.py``) is loaded once per function.
The layers' import paths go on ``sys.path`` (like ``/opt/python``) and the function's
environment from the template is applied to ``os.environ`` before it is loaded and before each
invocation. All functions share one process: the variables of the Globals agree, and one that
differs between functions (``FLOW``) must be read when the handler module is imported, which
happens with that function's environment in place (one import at a time). The timeout is only
reported, never enforced: a thread cannot be killed.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import sys
import threading
import time
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
    """One call of a function: what went in, what came out, how long it took."""

    request_id: str
    duration_ms: int
    error: str | None = None


@dataclass
class LocalFunction:
    """A template function, loaded lazily (first invocation = cold start)."""

    spec: FunctionSpec
    region: str = "us-east-1"
    invocations: int = 0
    errors: int = 0
    last: Invocation | None = None
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

    def invoke(self, event: dict[str, Any]) -> Any:
        """Call the handler with ``event`` and a fresh context; exceptions propagate (after counting)."""
        handler = self.load()
        self.apply_environment()
        ctx = LambdaContext(self.spec, self.region)
        started = time.monotonic()
        self.invocations += 1
        try:
            result = handler(event, ctx)
        except Exception as exc:
            self.errors += 1
            self.last = Invocation(ctx.aws_request_id, int((time.monotonic() - started) * 1000), repr(exc))
            log.exception("%s failed (request %s)", self.spec.logical_id, ctx.aws_request_id)
            raise
        elapsed = time.monotonic() - started
        self.last = Invocation(ctx.aws_request_id, int(elapsed * 1000))
        if elapsed > self.spec.timeout:
            log.warning(
                "%s ran %.1fs, over its %ss timeout (Lambda would have stopped it)",
                self.name,
                elapsed,
                self.spec.timeout,
            )
        return result

    def unload(self) -> None:
        """Forget the module (the next invocation is a cold start)."""
        with self._lock:
            sys.modules.pop(self.module_name, None)
            self._module = self._handler = None
