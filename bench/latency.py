"""Benchmark 9: webhook -> ERP latency on the local stack.

A local stack of its own, with the SQS event sources running (``LocalStack(run_pollers=True)``,
as Lambda's event source mappings would) and the schedules off, so a webhook is the only way in.
For each record: it is saved in the Magento sim first (not timed), then its signed Magento webhook
is POSTed to the webhook API at ``sent``; the time it is in Acumatica is when the Acumatica sim
answered the PUT that wrote it (its ``/_sim/requests`` log, ``at``). The PUT is found by the
record's own modification stamp, which the sim takes while serving that PUT (between the log's
``received_at`` and ``at``). Orders (``observer.sales_order_save_after`` -> sales order, customer
already known) and new customer accounts (``observer.customer_save_after`` -> Acumatica customer)
are measured one after the other, paced at ``INTERVAL_S``.

Each latency is split into the *pickup* (from the POST to the worker's first request for the record:
its GET of the record from Magento, as a webhook notice carries no copy of it; API, ingress,
SendMessage, the queue and the event source) and the *worker* (that GET to the Acumatica PUT
answered). The sender's own wait for the 202 (*webhook*) is reported beside them; it overlaps the
pickup (a worker may read the record before the 202 is back).
"""

from __future__ import annotations

import json
import tempfile
import time
import types
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

RECORDS = 200
INTERVAL_S = 0.25
"""Time between two webhooks (4 per second)."""
WARM_UP = 5
GOAL_P95_S = 2.0
MODES = ("local", "batching_window")
"""``local``: the local stack's event source as it is (a batch is what one receive returns);
``batching_window``: the same with the template's ``MaximumBatchingWindowInSeconds`` applied as
Lambda applies it (``windowed_receive``)."""


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by linear interpolation between closest ranks."""
    if not values:
        return 0.0
    xs = sorted(values)
    pos = (len(xs) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _epoch(stamp: Any) -> float:
    return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()


def _put_answered(log: list[dict[str, Any]], entity: str, stamp: float) -> float | None:
    """When the sim answered the PUT of ``entity`` that took modification stamp ``stamp``."""
    slack = 0.002  # the sim's stamps are cut to the millisecond
    for row in log:
        put = row["method"] == "PUT" and row["path"].endswith(f"/{entity}") and row["status"] < 300
        if put and row["received_at"] - slack <= stamp <= row["at"] + slack:
            return float(row["at"])
    return None


def windowed_receive(poller: Any, wait_time_s: int) -> list[dict[str, Any]]:
    """What Lambda's event source mapping does with ``MaximumBatchingWindowInSeconds``: once a first
    message is in, keep gathering until the batch is full or the window has passed since it came
    (the local poller hands over what one receive returns). Polls every 20 ms inside the window."""
    messages: list[dict[str, Any]] = []
    window = float(poller.event.batching_window_s)
    size = poller.event.batch_size
    first_at: float | None = None
    while len(messages) < size:
        res = poller.sqs.receive_message(
            QueueUrl=poller.queue.url,
            MaxNumberOfMessages=min(10, size - len(messages)),
            WaitTimeSeconds=wait_time_s if first_at is None else 0,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        got = res.get("Messages", [])
        if got and first_at is None:
            first_at = time.monotonic()
        messages.extend(got)
        if first_at is None:
            return messages
        if time.monotonic() - first_at >= window:
            break
        if not got:
            time.sleep(0.02)
    return messages


def _first_get(log: list[dict[str, Any]], path: str) -> float | None:
    times = [r["received_at"] for r in log if r["method"] == "GET" and r["path"].endswith(path)]
    return float(min(times)) if times else None


class _Phase:
    """One kind of record: how it is created, announced and found in Acumatica."""

    def __init__(
        self,
        name: str,
        create: Callable[[int], dict[str, Any]],
        event: Callable[[dict[str, Any]], bytes],
        magento_path: Callable[[dict[str, Any]], str],
        erp_entity: str,
        erp_stamp: Callable[[Any, dict[str, Any]], Any],
    ) -> None:
        self.name, self.create, self.event, self.magento_path = name, create, event, magento_path
        self.erp_entity, self.erp_stamp = erp_entity, erp_stamp


def _send_all(stack: Any, story: Any, phase: _Phase, count: int, interval_s: float, start: int) -> list[dict[str, Any]]:
    from erpsync.systems.magento.webhooks import sign

    url = f"{stack.api_url}/webhooks/magento"
    sent: list[dict[str, Any]] = []
    with httpx.Client(timeout=30) as http:
        next_at = time.perf_counter()
        for i in range(start, start + count):
            record = phase.create(i)
            body = phase.event(record)
            headers = {"Content-Type": "application/json", **sign(story.webhook_secret, body)}
            delay = next_at - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            t0 = time.time()
            r = http.post(url, content=body, headers=headers)
            t1 = time.time()
            if r.status_code != 202:
                raise RuntimeError(f"webhook answered {r.status_code}: {r.text[:200]}")
            sent.append({"record": record, "sent": t0, "ack": t1})
            next_at += interval_s
    return sent


def _collect(stack: Any, phase: _Phase, sent: list[dict[str, Any]], timeout_s: float = 180) -> list[dict[str, Any]]:
    acu = stack.sim_apps["acumatica"].state.sim
    deadline = time.monotonic() + timeout_s
    while True:
        with acu.lock:
            stamps = [phase.erp_stamp(acu, s["record"]) for s in sent]
        if all(x is not None for x in stamps) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    alog = httpx.get(f"{stack.sim_urls['acumatica']}/_sim/requests", timeout=60).json()["requests"]
    mlog = httpx.get(f"{stack.sim_urls['magento']}/_sim/requests", timeout=60).json()["requests"]
    rows = []
    for s, stamp in zip(sent, stamps, strict=True):
        done = _put_answered(alog, phase.erp_entity, _epoch(stamp)) if stamp is not None else None
        read = _first_get(mlog, phase.magento_path(s["record"]))
        rows.append(
            {
                "latency": None if done is None else done - s["sent"],
                "webhook": s["ack"] - s["sent"],
                "pickup": None if read is None else read - s["sent"],
                "worker": None if (read is None or done is None) else done - read,
            }
        )
    return rows


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    done = [r for r in rows if r["latency"] is not None]
    out: dict[str, Any] = {"sent": len(rows), "arrived": len(done)}
    for key in ("latency", "webhook", "pickup", "worker"):
        xs = [float(r[key]) for r in done if r[key] is not None]
        out[key] = {"p50": percentile(xs, 0.5), "p95": percentile(xs, 0.95), "max": max(xs) if xs else 0.0}
    out["mean_latency"] = sum(r["latency"] for r in done) / len(done) if done else 0.0
    return out


def run(records: int = RECORDS, interval_s: float = INTERVAL_S, warm_up: int = WARM_UP) -> dict[str, Any]:
    from bench.moto_server import cheap_transactions
    from sandbox.local.stack import LOCAL_SETTINGS, LocalStack
    from sandbox.sims import magento_orders as mo
    from sandbox.story import AcumaticaUser, MagentoAdmin, Story

    with tempfile.TemporaryDirectory() as tmp:
        stack = LocalStack(
            state_file=Path(tmp) / "local.json",
            run_pollers=True,
            run_schedules=False,
            moto_process=True,
            settings=LOCAL_SETTINGS,
        )
        with cheap_transactions(), stack:
            info = stack.info
            story = Story(
                magento=MagentoAdmin(**info["magento"]),
                acumatica=AcumaticaUser(**info["acumatica"]),
                api_url=stack.api_url,
                webhook_secret=info["webhook_secrets"]["magento"],
            )
            try:
                story.seed_catalog()
                known = story.seed_customers(4)
                cart = [mo.CartLine("24-MB04", 1), mo.CartLine("24-WG084", 3)]

                def new_order(i: int) -> dict[str, Any]:
                    order = mo.build_order(story.catalog, cart, customer=known[i % len(known)])
                    return dict(story.magento.call("POST", "/orders", json={"entity": order}))

                def new_customer(i: int) -> dict[str, Any]:
                    c = mo.sample_customer(email=f"latency{i}@example.com")
                    c["lastname"] = f"Latency{i}"
                    body = {"customer": c, "password": "Passw0rd!x"}
                    return dict(story.magento.call("POST", "/customers", json=body))

                def order_event(o: dict[str, Any]) -> bytes:
                    ref = {k: o[k] for k in ("entity_id", "increment_id", "updated_at")}
                    return json.dumps({"eventName": "observer.sales_order_save_after", "data": {"order": ref}}).encode()

                def customer_event(c: dict[str, Any]) -> bytes:
                    ref = {"id": c["id"], "email": c["email"], "updated_at": c["updated_at"]}
                    return json.dumps({"eventName": "observer.customer_save_after", "data": {"customer": ref}}).encode()

                def order_stamp(acu: Any, o: dict[str, Any]) -> Any:
                    for rec in acu.records["SalesOrder"].values():
                        if (rec.get("CustomerOrder") or {}).get("value") == o["increment_id"]:
                            return (rec.get("LastModified") or {}).get("value")
                    return None

                def customer_stamp(acu: Any, c: dict[str, Any]) -> Any:
                    for rec in acu.records["Customer"].values():
                        email = ((rec.get("MainContact") or {}).get("Email") or {}).get("value")
                        if str(email or "").lower() == c["email"].lower():
                            return (rec.get("LastModifiedDateTime") or {}).get("value")
                    return None

                phases = [
                    _Phase(
                        "orders",
                        new_order,
                        order_event,
                        lambda o: f"/V1/orders/{o['entity_id']}",
                        "SalesOrder",
                        order_stamp,
                    ),
                    _Phase(
                        "customers",
                        new_customer,
                        customer_event,
                        lambda c: f"/V1/customers/{c['id']}",
                        "Customer",
                        customer_stamp,
                    ),
                ]
                events = {
                    str(p.function.spec.environment.get("FLOW")): p.event
                    for p in stack.pollers
                    if p.function.spec.environment.get("FLOW") in ("orders", "customers")
                }
                result: dict[str, Any] = {
                    "records": records,
                    "interval_s": interval_s,
                    "sqs_wait_s": stack.sqs_wait_seconds,
                    "event_sources": {
                        flow: {
                            "batch_size": ev.batch_size,
                            "batching_window_s": ev.batching_window_s,
                            "maximum_concurrency": ev.maximum_concurrency,
                        }
                        for flow, ev in events.items()
                    },
                }
                start = 0
                for phase in phases:
                    # a warm-up per phase: the container's first records pay its imports and sign-ins
                    first = _collect(stack, phase, _send_all(stack, story, phase, warm_up, 1.0, 10_000))
                    result[phase.name] = {"cold_first_s": first[0]["latency"]}
                    poller = stack.poller(phase.name)
                    for mode in MODES:
                        if mode == "batching_window":
                            poller.receive = types.MethodType(windowed_receive, poller)  # type: ignore[method-assign]
                        httpx.delete(f"{stack.sim_urls['acumatica']}/_sim/requests")
                        httpx.delete(f"{stack.sim_urls['magento']}/_sim/requests")
                        rows = _collect(stack, phase, _send_all(stack, story, phase, records, interval_s, start))
                        start += records
                        result[phase.name][mode] = {**_summary(rows), "samples": rows}
                        vars(poller).pop("receive", None)
                result["goal_p95_s"] = GOAL_P95_S
                return result
            finally:
                story.magento.close()
                story.acumatica.close()
