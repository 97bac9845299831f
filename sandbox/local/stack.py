"""The whole stack on a laptop: template.yaml on moto, the sims, the webhook API, pollers and schedules.

No cloud account and no Docker: moto serves DynamoDB, SQS, SNS and Secrets Manager on a loopback
port, the Magento and Acumatica sims run under uvicorn, the ``Api`` events are served as API
Gateway proxy events, each ``SQS`` event is polled the way Lambda's event source mapping does
it and each ``Schedule`` fires (every ``schedule_seconds`` by default). Every name, queue,
handler and environment variable comes from the template (see ``sandbox.local.template``).

    with LocalStack(state_file=tmp / "local.json") as stack:
        httpx.post(stack.api_url + "/webhooks/magento", json=...)

``start()`` also points this process at the stack (``AWS_ENDPOINT_URL``, test credentials, the
region) and clears the ``functools`` caches of loaded ``erpsync`` modules, so the layer's cached
boto3 clients and secrets belong to this stack (a cold start); ``stop()`` restores the
environment. ``erpsync local up`` runs :func:`run_forever`; ``erpsync sim`` runs :func:`start_sim`.
``connect`` (``erpsync local up --connect acumatica=https://...``) uses a system at a URL instead of
starting its sim (:func:`parse_connect`, :func:`connect_credentials`).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import os
import secrets as pysecrets
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any
from urllib.parse import urlsplit

from sandbox.local import aws
from sandbox.local.lambda_runtime import LocalFunction, add_layers_to_path
from sandbox.local.net import wait_port_closed
from sandbox.local.scheduler import Schedule
from sandbox.local.sqs_poller import SqsPoller
from sandbox.local.template import StackTemplate, load_template

log = logging.getLogger("erpsync.local")

DEFAULT_TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
DEFAULT_STATE_FILE = Path(".erpsync/local.json")
SIMS = ("magento", "acumatica", "shopify", "quickbooks", "sap_b1", "sap_s4")
STORES = ("magento", "shopify")
ERPS = ("acumatica", "quickbooks", "sap_b1", "sap_s4")
"""The store and ERP kinds the local stack can run (``--store``, ``--erp``), each on its sim."""
ACUMATICA_ENDPOINT = "Default/24.200.001"
ENV_KEYS = (
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
)


# --------------------------------------------------------------------------- uvicorn in a thread


def free_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening TCP socket on ``host:port`` (0: a free port).

    TCP_NODELAY is set here because the accepted connections inherit it: uvicorn serving a socket
    it was handed writes a response's headers and body separately, and with Nagle's algorithm on,
    the body waits for the client's delayed ACK, some 40 ms on every request. The socket is not
    inheritable (Python's default): a child process started while it is open (``os.system``,
    ``close_fds=False``) would keep the port listening after ``stop()`` closed it.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(128)
    except BaseException:
        sock.close()
        raise
    return sock


class ServerThread:
    """An ASGI app served by uvicorn in a thread, on a socket bound before it starts.

    ``stop()`` returns once the thread has exited and the port refuses connections: uvicorn is
    asked to exit, given ``grace_s`` to finish the requests in flight (then it cancels them), and
    forced out if it is still running after the join timeout.
    """

    def __init__(self, app: Any, name: str, host: str = "127.0.0.1", port: int = 0, *, grace_s: int = 3) -> None:
        self.app, self.name, self.host = app, name, host
        self.grace_s = grace_s
        self._sock = free_socket(host, port)
        self.port = int(self._sock.getsockname()[1])
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        import uvicorn

        config = uvicorn.Config(
            self.app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=self.grace_s
        )
        self._server = uvicorn.Server(config)
        server, sock = self._server, self._sock

        def run() -> None:
            asyncio.run(server.serve(sockets=[sock]))

        self._thread = threading.Thread(target=run, name=f"uvicorn-{self.name}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start on {self.url}")
            time.sleep(0.01)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving; return once the thread has exited and the socket is closed. Safe to call twice."""
        server, thread = self._server, self._thread
        if server is not None:
            server.should_exit = True
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive() and server is not None:
                server.force_exit = True  # stop waiting for connections and tasks
                thread.join(timeout)
            if thread.is_alive():
                log.warning("%s: the uvicorn thread did not exit within %.0fs", self.name, 2 * timeout)
        # uvicorn closed it on its way out; closing again is a no-op, and covers a thread that never ran
        self._sock.close()
        wait_port_closed(self.host, self.port)
        self._thread = None
        self._server = None


# --------------------------------------------------------------------------- the stack


def _sim_app(name: str) -> Any:
    import importlib

    return importlib.import_module(f"sandbox.sims.{name}").create_app()


def sim_credentials(name: str, url: str) -> dict[str, str]:
    """What the connector needs to reach sim ``name`` at ``url`` (the secret's JSON)."""
    if name == "magento":
        return {"base_url": f"{url}/rest/default", "username": "admin", "password": "admin123"}
    if name == "shopify":
        from sandbox.sims import shopify

        return {
            "shop": url,
            "access_token": shopify.ACCESS_TOKEN,
            "client_id": shopify.CLIENT_ID,
            "client_secret": shopify.CLIENT_SECRET,
        }
    if name == "quickbooks":
        from sandbox.sims import quickbooks

        return {
            "base_url": url,
            "realm_id": quickbooks.REALM,
            "access_token": quickbooks.ACCESS_TOKEN,
            "client_id": quickbooks.CLIENT_ID,
            "client_secret": quickbooks.CLIENT_SECRET,
            "webhook_verifier": quickbooks.VERIFIER_TOKEN,
            "token_url": f"{url}/oauth2/v1/tokens/bearer",
        }
    if name == "sap_b1":
        from sandbox.sims import sap_b1

        return {
            "base_url": url,
            "company_db": sap_b1.COMPANY_DB,
            "username": sap_b1.USERNAME,
            "password": sap_b1.PASSWORD,
            "version": "v1",
        }
    if name == "sap_s4":
        from sandbox.sims import sap_s4

        return {"base_url": f"{url}/sap/opu/odata/sap", "username": sap_s4.USERNAME, "password": sap_s4.PASSWORD}
    if name == "acumatica":
        return {
            "base_url": url,
            "endpoint": ACUMATICA_ENDPOINT,
            "username": "admin",
            "password": "123",
            "company": "Company",
            "branch": "",
        }
    raise ValueError(f"no credentials known for sim {name!r}")


def parse_connect(values: Sequence[str]) -> dict[str, str]:
    """``--connect`` values (``<system>=<url>``) as system -> URL; ValueError says what is wrong."""
    out: dict[str, str] = {}
    for value in values:
        system, sep, url = value.partition("=")
        system, url = system.strip().lower(), url.strip().rstrip("/")
        if not sep:
            raise ValueError(f"--connect {value!r}: expected <system>=<url>, e.g. acumatica=https://erp.example.com")
        if system not in SIMS:
            raise ValueError(f"--connect {value!r}: unknown system {system!r} (systems: {', '.join(SIMS)})")
        parts = urlsplit(url)
        try:
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError:
            parts = urlsplit("")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"--connect {value!r}: {url!r} is not a URL (e.g. http://127.0.0.1:8081)")
        if system in out:
            raise ValueError(f"--connect: {system} given twice")
        out[system] = url
    return out


URL_KEYS = ("base_url", "shop")
"""The secret fields that hold a system's URL (set by ``--connect``, never from the environment)."""


def connect_env(name: str, key: str) -> str:
    """The environment variable that sets ``key`` of a connected system's secret."""
    return f"ERPSYNC_{name.upper()}_{key.upper()}"


def connect_credentials(name: str, url: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The secret of system ``name`` at ``url``: each field from ``ERPSYNC_<NAME>_<FIELD>``
    (``ERPSYNC_ACUMATICA_PASSWORD``), else the sim's default. A Magento URL without ``/rest`` gets
    ``/rest/default``."""
    env = os.environ if environ is None else environ
    creds = sim_credentials(name, url)
    if name == "magento" and "/rest" in urlsplit(url).path:
        creds["base_url"] = url
    for key in creds:
        if key not in URL_KEYS and connect_env(name, key) in env:
            creds[key] = env[connect_env(name, key)]
    return creds


def _webhook_secret(system: str, connect: Mapping[str, str]) -> str:
    """The secret a system's webhooks are signed with: Shopify signs with the app's client secret,
    QuickBooks with the app's verifier token (the sim's, or ``ERPSYNC_<SYSTEM>_...`` for a connected
    one); for the others a new one."""
    field = {"shopify": "client_secret", "quickbooks": "webhook_verifier"}.get(system)
    if field:
        return connect_credentials(system, connect.get(system, "http://127.0.0.1"))[field]
    return pysecrets.token_hex(16)


def _reset_layer_caches() -> None:
    """Clear ``functools`` caches of loaded erpsync modules: a new stack means new clients and secrets.

    A cached boto3 client (a cached function without required arguments that returned one) is
    closed first, so its keep-alive connections to moto end with the stack.
    """
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "erpsync" or name.startswith("erpsync.")):
            continue
        for value in list(vars(module).values()):
            if getattr(value, "__module__", None) != name or not callable(getattr(value, "cache_clear", None)):
                continue
            if value.cache_info().currsize and _no_required_args(value):
                with contextlib.suppress(Exception):
                    cached = value()
                    if callable(getattr(cached, "close", None)) and hasattr(cached, "meta"):
                        cached.close()
            value.cache_clear()
    # Powertools Parameters keeps fetched secrets (and its boto3 clients) for their max_age
    params = sys.modules.get("aws_lambda_powertools.utilities.parameters")
    if params is not None:
        params.clear_caches()
        with contextlib.suppress(Exception):
            from aws_lambda_powertools.utilities.parameters import base

            base.DEFAULT_PROVIDERS.clear()


def _no_required_args(fn: Any) -> bool:
    try:
        params = inspect.signature(fn.__wrapped__).parameters.values()
    except (AttributeError, TypeError, ValueError):
        return False
    return all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params)


class LocalStack:
    """template.yaml running in this process (context manager, or ``start()``/``stop()``).

    After ``start()``: ``template`` (the resolved :class:`StackTemplate`), ``aws_endpoint``,
    ``api_url`` (stage included), ``sim_urls``/``sim_apps`` (per sim), ``credentials`` (per sim),
    ``webhook_secrets``, ``secrets`` (name -> document), ``tables``/``queues``/``dlqs`` (logical
    id -> name/URL), ``queue_arns``, ``topics`` (logical id -> SNS topic ARN, in moto: the daily
    report publishes there), ``functions`` (logical id -> :class:`LocalFunction`),
    ``pollers``, ``schedules`` and ``info`` (what ``state_file`` holds).
    """

    def __init__(
        self,
        template: str | Path = DEFAULT_TEMPLATE,
        *,
        parameters: Mapping[str, Any] | None = None,
        stack_name: str = "erpsync",
        region: str = "us-east-1",
        host: str = "127.0.0.1",
        moto_port: int = 0,
        api_port: int = 0,
        sim_ports: Mapping[str, int] | None = None,
        store: str = "magento",
        erp: str = "acumatica",
        sims: Sequence[str] | None = None,
        run_pollers: bool = True,
        run_schedules: bool = True,
        schedule_seconds: float | None = 5.0,
        schedule_speedup: float = 1.0,
        fire_schedules_immediately: bool = False,
        sqs_wait_seconds: int = 1,
        state_file: str | Path | None = DEFAULT_STATE_FILE,
        code_overrides: Mapping[str, str | Path] | None = None,
        secrets: Mapping[str, Mapping[str, Any]] | None = None,
        webhook_secrets: Mapping[str, str] | None = None,
        seed: Mapping[str, Any] | None = None,
        settings: Mapping[str, Any] | None = None,
        moto_process: bool = False,
        connect: Mapping[str, str] | None = None,
    ) -> None:
        """
        ``schedule_seconds`` fires every schedule that often (None: the template's expression
        divided by ``schedule_speedup``); a schedule of once a day or rarer (the daily report) keeps
        its own time either way (``LocalStack.invoke("report", {})`` runs it now). ``sims`` names
        the sims to serve (``sandbox.sims.<name>``).
        ``code_overrides`` points a function (logical id) at another CodeUri. ``secrets`` adds or
        replaces Secrets Manager documents. ``seed`` maps a sim to the body of its ``/_sim/seed``.
        ``settings`` are admin settings saved before any poller or schedule runs.
        Ports 0 pick free ports. ``moto_process`` runs moto in a child process rather than a thread
        (its own GIL: load tests get a second core). ``connect`` maps a system to the URL of one
        to use instead of its sim (credentials from :func:`connect_credentials`; never seeded).
        ``store`` is the store kind (``magento`` or ``shopify``): the template's ``StoreSystem``, and
        with ``sims`` None the sims are that store's and Acumatica's. A Shopify sim is subscribed to
        the stack's webhook API for orders and customers, as a merchant's app would be.
        """
        if store not in STORES:
            raise ValueError(f"no store {store!r} (stores: {', '.join(STORES)})")
        if erp not in ERPS:
            raise ValueError(f"no ERP {erp!r} (ERPs: {', '.join(ERPS)})")
        self.store, self.erp = store, erp
        self.template_path = Path(template)
        self.parameters = dict(parameters or {})
        self.parameters.setdefault("StoreSystem", store)
        self.parameters.setdefault("StoreSecretName", f"erpsync/{store}")
        self.parameters.setdefault("ErpSystem", erp)
        self.parameters.setdefault("ErpSecretName", f"erpsync/{erp}")
        self.stack_name, self.region, self.host = stack_name, region, host
        self.moto_port, self.api_port = moto_port, api_port
        self.sim_ports = dict(sim_ports or {})
        self.sim_names = list(sims if sims is not None else (store, erp))
        self.run_pollers, self.run_schedules = run_pollers, run_schedules
        self.schedule_seconds, self.schedule_speedup = schedule_seconds, schedule_speedup
        self.fire_schedules_immediately = fire_schedules_immediately
        self.sqs_wait_seconds = sqs_wait_seconds
        self.state_file = Path(state_file) if state_file else None
        self.code_overrides = dict(code_overrides or {})
        self.extra_secrets = dict(secrets or {})
        self.seed = dict(seed or {})
        self.settings = dict(settings or {})
        self.moto_process = moto_process
        self.connect = dict(connect or {})
        self.webhook_secrets: dict[str, str] = dict(
            webhook_secrets or {store: _webhook_secret(store, self.connect), erp: _webhook_secret(erp, self.connect)}
        )

        self.template: StackTemplate | None = None
        self.aws_endpoint = ""
        self.api_url = ""
        self.sim_urls: dict[str, str] = {}
        self.sim_apps: dict[str, Any] = {}
        self.credentials: dict[str, dict[str, str]] = {}
        self.secrets: dict[str, dict[str, Any]] = {}
        self.tables: dict[str, str] = {}
        self.queues: dict[str, str] = {}
        self.dlqs: dict[str, str] = {}
        self.queue_arns: dict[str, str] = {}
        self.topics: dict[str, str] = {}
        self.functions: dict[str, LocalFunction] = {}
        self.pollers: list[SqsPoller] = []
        self.schedules: list[Schedule] = []
        self.info: dict[str, Any] = {}
        self.started = False

        self._moto: aws.MotoServer | None = None
        self._servers: list[ServerThread] = []
        self._saved_env: dict[str, str | None] = {}
        self._added_paths: list[str] = []
        self._clients: list[Any] = []

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> LocalStack:
        if self.started:
            return self
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        self.started = True
        return self

    def _start(self) -> None:
        self._moto = aws.MotoServer(self.host, self.moto_port, own_process=self.moto_process)
        self.aws_endpoint = self._moto.start()
        st = load_template(
            self.template_path,
            self.parameters,
            stack_name=self.stack_name,
            region=self.region,
            aws_endpoint=self.aws_endpoint,
            code_overrides=dict(self.code_overrides),
        )
        self.template = st
        created = aws.provision(st, self.aws_endpoint)
        self.tables, self.queues, self.dlqs = created.tables, created.queues, created.dlqs
        self.queue_arns, self.topics = created.queue_arns, created.topics

        for name, url in self.connect.items():
            self.credentials[name] = connect_credentials(name, url)
        for name in self.sim_names:
            if name in self.connect:
                continue
            app = _sim_app(name)
            server = ServerThread(app, f"sim-{name}", self.host, self.sim_ports.get(name, 0))
            server.start()
            self._servers.append(server)
            self.sim_apps[name], self.sim_urls[name] = app, server.url
            self.credentials[name] = sim_credentials(name, server.url)
        self._seed_sims()

        self.secrets = self._secret_documents(st)
        aws.create_secrets(self.aws_endpoint, self.secrets, self.region)
        self._point_environment()

        self._added_paths = add_layers_to_path([st.layers[x] for x in st.layers])
        self.functions = {lid: LocalFunction(spec, self.region) for lid, spec in st.functions.items()}
        for fn in self.functions.values():
            fn.apply_environment()

        from sandbox.local.api import create_api_app

        routes = [(ev, self.functions[lid]) for lid, spec in st.functions.items() for ev in spec.api_events]
        stages = sorted({ev.stage for ev, _ in routes}) or ["local"]
        api = ServerThread(create_api_app(routes), "api", self.host, self.api_port)
        api.start()
        self._servers.append(api)
        self.api_url = f"{api.url}/{stages[0]}"

        for lid, spec in st.functions.items():
            fn = self.functions[lid]
            for sev in spec.sqs_events:
                if not sev.enabled:
                    continue
                queue = st.queues[sev.queue]
                dlq = st.queues[queue.dead_letter_queue] if queue.dead_letter_queue else None
                poller = SqsPoller(
                    fn, sev, queue, self.aws_endpoint, dlq=dlq, region=self.region, wait_time_s=self.sqs_wait_seconds
                )
                self.pollers.append(poller)
            for sch in spec.schedule_events:
                self.schedules.append(
                    Schedule(
                        fn,
                        sch,
                        speedup=self.schedule_speedup,
                        interval_override_s=self.schedule_seconds,
                        fire_immediately=self.fire_schedules_immediately,
                        region=self.region,
                    )
                )
        if self.settings:
            apply_settings(self, self.settings)
        if self.store == "shopify" and "shopify" in self.sim_urls:
            self._subscribe_shopify()
        if self.erp == "quickbooks" and "quickbooks" in self.sim_urls:
            import httpx

            url = f"{self.api_url}/webhooks/quickbooks"
            httpx.post(f"{self.sim_urls['quickbooks']}/_sim/webhooks", json={"url": url}, timeout=10).raise_for_status()
        self.info = self._describe()
        if self.state_file:
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            self.state_file.touch(0o600)
            self.state_file.chmod(0o600)  # it holds the credentials: readable by you only
            self.state_file.write_text(json.dumps(self.info, indent=2) + "\n")
        if self.run_pollers:
            for poller in self.pollers:
                poller.start()
        if self.run_schedules:
            for schedule in self.schedules:
                schedule.start()

    def stop(self) -> None:
        """Stop schedules, pollers, servers and moto; restore the environment. Safe to call twice."""
        for schedule in self.schedules:
            schedule.signal_stop()
        for poller in self.pollers:
            poller.signal_stop()
        for schedule in self.schedules:
            schedule.stop()
        for poller in self.pollers:
            poller.stop()
        for server in reversed(self._servers):
            server.stop()
        self._servers = []
        for c in self._clients:
            c.close()
        self._clients = []
        _reset_layer_caches()
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
        for fn in self.functions.values():
            fn.unload()
        self._restore_environment()
        for path in self._added_paths:
            if path in sys.path:
                sys.path.remove(path)
        self._added_paths = []
        self.started = False

    # ------------------------------------------------------------------ helpers

    def _subscribe_shopify(self) -> None:
        """Have the Shopify sim send its order, customer and refund webhooks to the stack's API."""
        import httpx

        from sandbox.shopify_merchant import ORDER_TOPICS, ShopifyMerchant

        url = f"{self.api_url}/webhooks/shopify"
        with httpx.Client(base_url=self.sim_urls["shopify"], timeout=10) as http:
            merchant = ShopifyMerchant(http, self.credentials["shopify"]["access_token"])
            merchant.subscribe(url, (*ORDER_TOPICS, "REFUNDS_CREATE"))

    def _seed_sims(self) -> None:
        for name, body in self.seed.items():
            if name in self.sim_urls and body:
                seed_sim(name, self.sim_urls[name], body)

    def _secret_documents(self, st: StackTemplate) -> dict[str, dict[str, Any]]:
        params = st.parameters
        docs: dict[str, dict[str, Any]] = {}
        for system_param, secret_param in (("StoreSystem", "StoreSecretName"), ("ErpSystem", "ErpSecretName")):
            system, name = params.get(system_param), params.get(secret_param)
            if name and system in self.credentials:
                docs[str(name)] = dict(self.credentials[str(system)])
        if params.get("WebhookSecretName"):
            docs[str(params["WebhookSecretName"])] = dict(self.webhook_secrets)
        docs.update({k: dict(v) for k, v in self.extra_secrets.items()})
        return docs

    def _point_environment(self) -> None:
        self._saved_env = {k: os.environ.get(k) for k in ENV_KEYS}
        for spec in self.template.functions.values() if self.template else []:
            for key in spec.environment:
                self._saved_env.setdefault(key, os.environ.get(key))
        for key in ("AWS_SESSION_TOKEN", "AWS_PROFILE"):
            os.environ.pop(key, None)
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": self.aws_endpoint,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": self.region,
                "AWS_REGION": self.region,
            }
        )
        _reset_layer_caches()

    def _restore_environment(self) -> None:
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env = {}

    def _describe(self) -> dict[str, Any]:
        st = self.template
        assert st is not None
        env: dict[str, str] = {}  # what every function that sets a variable agrees on (not FLOW)
        differ: set[str] = set()
        for spec in st.functions.values():
            for key, value in spec.environment.items():
                if env.setdefault(key, value) != value:
                    differ.add(key)
        env = {k: v for k, v in env.items() if k not in differ}
        return {
            "aws_endpoint": self.aws_endpoint,
            "region": self.region,
            "stack_name": self.stack_name,
            "api_url": self.api_url,
            "webhook_urls": {
                src: f"{self.api_url}{ev.path.replace('{source}', src)}"
                for spec in st.functions.values()
                for ev in spec.api_events
                if "{source}" in ev.path
                for src in self.webhook_secrets
            },
            **{name: dict(creds) for name, creds in self.credentials.items()},
            "sims": dict(self.sim_urls),
            "connected": dict(self.connect),
            "webhook_secrets": dict(self.webhook_secrets),
            "secrets": sorted(self.secrets),
            "tables": dict(self.tables),
            "queues": {k: v for k, v in self.queues.items() if k not in self.dlqs},
            "dlqs": dict(self.dlqs),
            "topics": dict(self.topics),
            "functions": {
                lid: {
                    "name": spec.name,
                    "code_uri": str(spec.code_uri),
                    "handler": spec.handler,
                    "api": [f"{ev.method} {ev.path}" for ev in spec.api_events],
                    "queues": [ev.queue for ev in spec.sqs_events],
                    "schedules": [ev.expression for ev in spec.schedule_events],
                }
                for lid, spec in st.functions.items()
            },
            "env": env,
            "parameters": {k: v for k, v in st.parameters.items()},
        }

    def client(self, service: str) -> Any:
        """A boto3 client on this stack's moto (closed by ``stop()``)."""
        c = aws.client(service, self.aws_endpoint, self.region)
        self._clients.append(c)
        return c

    def function(self, name: str) -> LocalFunction:
        """A function by logical id (``ErpCustomersFunction``) or short name (``erp-customers``)."""
        if name in self.functions:
            return self.functions[name]
        short = "".join(c for c in name.lower() if c.isalnum())
        for lid, fn in self.functions.items():
            if lid.lower() == f"{short}function":
                return fn
        raise KeyError(f"no function {name!r}; the template has {sorted(self.functions)}")

    def invoke(self, name: str, event: dict[str, Any]) -> Any:
        """Invoke a function directly (like ``aws lambda invoke``)."""
        return self.function(name).invoke(event)

    def poller(self, name: str) -> SqsPoller:
        fn = self.function(name)
        return next(p for p in self.pollers if p.function is fn)

    def schedule(self, name: str) -> Schedule:
        fn = self.function(name)
        return next(s for s in self.schedules if s.function is fn)

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.1) -> Any:
        """Poll ``predicate`` until it returns something truthy; that value (TimeoutError otherwise)."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {timeout}s")
            time.sleep(interval)


# --------------------------------------------------------------------------- erpsync local up


def default_seed() -> dict[str, Any]:
    """Sample data for the sims, from what each sim module offers (``sample_seed()``), if anything."""
    import importlib

    seed: dict[str, Any] = {}
    try:
        from sandbox.sims.magento_orders import sample_catalog, sample_customer

        seed["magento"] = {"products": sample_catalog(), "customers": [sample_customer()]}
    except ImportError:
        pass
    for name in SIMS:
        try:
            module = importlib.import_module(f"sandbox.sims.{name}")
        except ImportError:
            continue
        sample = getattr(module, "sample_seed", None)
        if callable(sample):
            seed[name] = sample()
    return seed


def seed_sim(name: str, url: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """Load ``body`` into the sim at ``url`` (``POST /_sim/seed``); what it created."""
    import httpx

    res = httpx.post(f"{url}/_sim/seed", json=dict(body), timeout=30)
    if res.status_code >= 400:
        raise RuntimeError(f"seeding {name} failed ({res.status_code}): {res.text[:500]}")
    created: dict[str, Any] = res.json()
    return created


def start_sim(name: str, host: str = "127.0.0.1", port: int = 0) -> ServerThread:
    """Serve sim ``name`` alone on ``host:port`` (0: a free port), started; ``stop()`` it.
    ValueError for an unknown sim, OSError (or OverflowError) when it cannot listen there."""
    if name not in SIMS:
        raise ValueError(f"no simulator {name!r} (simulators: {', '.join(SIMS)})")
    server = ServerThread(_sim_app(name), f"sim-{name}", host, port)
    try:
        server.start()
    except BaseException:
        server.stop()
        raise
    return server


def _answers(url: str) -> bool:
    """Whether anything answers HTTP at ``url`` (any status)."""
    import httpx

    try:
        httpx.get(url, timeout=5)
    except httpx.HTTPError:
        return False
    return True


LOCAL_SETTINGS: dict[str, Any] = {
    "tax_id": "STORETAX",
    "default_ship_via": "GROUND",
    "default_payment_method": "CHECK",
}
"""Settings of the seeded local stack: store tax goes to one tax id, unmapped shipping and payment
methods to a default, so any sample order syncs (a real merchant maps their own)."""
CONNECTION_SETTINGS: dict[str, dict[str, Any]] = {
    "sap_b1": {
        "freight_expense_code": 1,
        "tax_expense_code": 2,
        "tax_code": "EX",
        "warehouse_code": "01",
        "transfer_account": "_SYS00000000002",  # SAP's own example account (the sim checks none)
    },
    "sap_s4": {
        "sales_organization": "1710",
        "distribution_channel": "10",
        "organization_division": "00",
        "generic_sold_to": "WEBSHOP",
        "discount_condition_type": "RB00",
        "freight_condition_type": "HD00",
        "rejection_reason": "10",
    },
}
"""Each system's own settings on its seeded sim (the codes ``sample_seed()`` seeds): an SAP Business
One order books freight and the store's tax as the sim's additional expenses 1 and 2, its lines on
the exempt tax code ``EX`` in warehouse ``01`` (the default numbering series: the sim keeps one); an
S/4HANA order goes to SAP's demo sales area 1710/10/00 for the sim's generic web customer ``WEBSHOP``,
its discount and freight as the sim's condition types ``RB00`` and ``HD00``, a store cancellation as
rejection reason ``10`` (the sim takes any code)."""
STORE_SETTINGS_WITH_ERP: dict[str, dict[str, dict[str, Any]]] = {
    "sap_b1": {"magento": {"notify_invoice": True}},
    "sap_s4": {"magento": {"notify_invoice": True}},
}
"""Store settings an ERP's story asks for: the SAP invoice reaches Magento with its e-mail (issue 13)."""


def local_settings(store: str = "magento", erp: str = "acumatica") -> dict[str, Any]:
    """``LOCAL_SETTINGS`` with the connection settings the store and ERP need on their seeded sims."""
    connections: dict[str, Any] = {}
    for kind, role, own in (
        (store, "store", STORE_SETTINGS_WITH_ERP.get(erp, {}).get(store)),
        (erp, "erp", CONNECTION_SETTINGS.get(erp)),
    ):
        if own:
            connections[kind] = {"kind": kind, "role": role, "settings": dict(own)}
    return {**LOCAL_SETTINGS, "connections": connections} if connections else dict(LOCAL_SETTINGS)


def apply_settings(stack: LocalStack, changes: Mapping[str, Any]) -> None:
    """Save admin settings into the stack's bindings table (as `erpsync settings set` does)."""
    from erpsync.state.settings import SettingsStore

    SettingsStore(stack.tables["BindingsTable"]).update(dict(changes), actor="local up")


def run_forever(
    *,
    schedule_seconds: float = 5.0,
    seed: bool = True,
    state_file: str | Path = DEFAULT_STATE_FILE,
    **options: Any,
) -> None:
    """Start the local stack, print where everything is, block until SIGINT/SIGTERM, stop cleanly."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("botocore", "boto3", "urllib3", "httpx", "httpcore", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    stack = LocalStack(
        schedule_seconds=schedule_seconds,
        state_file=state_file,
        seed=default_seed() if seed else None,
        settings=local_settings(options.get("store", "magento"), options.get("erp", "acumatica")) if seed else None,
        **options,
    )
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with console.status("starting moto, the sims and the webhook API..."):
            stack.start()
        info = stack.info
        mark_running(Path(state_file), os.getpid())  # for `erpsync local down`
        table = Table(title="erpsync local stack", show_header=False)
        table.add_row("AWS endpoint (moto)", info["aws_endpoint"])
        table.add_row("Webhook API", info["api_url"])
        for src, url in info["webhook_urls"].items():
            table.add_row(f"  webhook {src}", f"{url}  (secret {info['webhook_secrets'][src]})")
        for name in stack.credentials:
            creds = info[name]
            key = "password" if "password" in creds else "access_token"
            secret = creds[key]
            if name in stack.connect:
                env = connect_env(name, key)
                secret = f"from {env}" if env in os.environ else f"{secret}, the sim's default"
            label = f"{name} (connected)" if name in stack.connect else f"{name} sim"
            who = f"{creds['username']} / {secret}" if key == "password" else f"token {secret}"
            table.add_row(label, f"{creds.get('base_url') or creds.get('shop')}  ({who})")
        for lid, url in info["queues"].items():
            table.add_row(f"queue {lid}", url)
        for lid, name in info["tables"].items():
            table.add_row(f"table {lid}", name)
        table.add_row("schedules", f"every {schedule_seconds:g}s" if schedule_seconds else "as in the template")
        table.add_row("state file", str(state_file))
        if seed:
            table.add_row("settings", ", ".join(f"{k}={v}" for k, v in stack.settings.items()))
        console.print(table)
        for name, url in stack.connect.items():
            if not _answers(url):
                warning = f"warning: nothing answers at {url} ({name}); its flows retry until it does"
                console.print(warning, markup=False)
        console.print("Ctrl-C stops everything.")
        while not done.wait(0.5):
            pass
    finally:
        console.print("stopping...")
        stack.stop()
        mark_running(Path(state_file), None)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def mark_running(state_file: Path, pid: int | None) -> None:
    """Write (or, None, remove) the pid of the `erpsync local up` process in its state file."""
    try:
        info = json.loads(state_file.read_text())
    except (OSError, ValueError):
        return
    if pid is None:
        info.pop("pid", None)
    else:
        info["pid"] = pid
    state_file.write_text(json.dumps(info, indent=2) + "\n")


def stop_running(state_file: Path, wait_s: float = 60.0) -> str:
    """Stop the `erpsync local up` that wrote ``state_file`` (SIGTERM: it stops cleanly); what happened.
    ``LookupError`` when no such process runs."""
    try:
        info = json.loads(state_file.read_text())
    except FileNotFoundError:
        raise LookupError(f"no local stack: {state_file} does not exist (start one with `erpsync local up`)") from None
    except ValueError as exc:
        raise LookupError(f"{state_file} is not a local stack's state file: {exc}") from None
    pid = info.get("pid")
    if not isinstance(pid, int):
        raise LookupError(f"no local stack is running from {state_file} (it stopped, or runs in this process)")
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        mark_running(state_file, None)
        raise LookupError(f"no local stack is running from {state_file} (process {pid} is gone)") from None
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:  # it takes its pid out of the state file once everything stopped
        try:
            os.kill(pid, 0)
            stopped = json.loads(state_file.read_text()).get("pid") != pid
        except ProcessLookupError:
            stopped = True
        except (OSError, ValueError):
            stopped = False  # being rewritten: look again
        if stopped:
            return f"stopped the local stack (process {pid})"
        time.sleep(0.2)
    raise TimeoutError(f"the local stack (process {pid}) did not stop within {wait_s:g} s; `kill {pid}` stops it")
