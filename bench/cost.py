"""Benchmark 6: what 1 million orders cost on AWS (us-east-1), from the measured counts and durations."""

from __future__ import annotations

from typing import Any

PRICE_DATE = "2024 (us-east-1 on-demand list prices)"
PRICES = {
    "lambda_gb_s": 0.0000133334,  # arm64, per GB-second
    "lambda_request": 0.20 / 1e6,
    "sqs_request": 0.40 / 1e6,  # standard queue, per 64 KB request (after the free tier)
    "dynamo_wru": 0.625 / 1e6,
    "dynamo_rru": 0.125 / 1e6,
    "apigw_request": 3.50 / 1e6,  # REST API
}
ORDERS = 1_000_000
MEMORY_GB = 256 / 1024
BATCH = 10  # the orders queue's BatchSize in template.yaml
WEBHOOK_MS = 60.0  # assumed duration of one webhook invocation (not measured here)
# a remote API is slower than a sim on loopback: the "realistic" line adds these per request
REAL_ACUMATICA_MS = 400.0
REAL_MAGENTO_MS = 150.0


def estimate(per_order: dict[str, Any]) -> dict[str, Any]:
    """``per_order``: the steady-state orders figures of benchmark 1 (requests, AWS units, seconds)."""
    units = per_order["units"]
    local_s = float(per_order["seconds_per_record"])
    remote_ms = float(per_order["acumatica"]) * REAL_ACUMATICA_MS + float(per_order["magento"]) * REAL_MAGENTO_MS
    real_s = local_s + remote_ms / 1000
    lines: list[tuple[str, str, float]] = []

    def add(item: str, arithmetic: str, dollars: float) -> None:
        lines.append((item, arithmetic, dollars))

    for label, seconds in (("measured", local_s), ("realistic", real_s)):
        gbs = ORDERS * seconds * MEMORY_GB
        add(
            f"Lambda compute, orders worker ({label}: {seconds * 1000:.0f} ms/order)",
            f"{ORDERS:,} x {seconds:.3f} s x 0.25 GB = {gbs:,.0f} GB-s x ${PRICES['lambda_gb_s']}",
            gbs * PRICES["lambda_gb_s"],
        )
    hook_gbs = ORDERS * WEBHOOK_MS / 1000 * MEMORY_GB
    add(
        f"Lambda compute, webhooks ({WEBHOOK_MS:.0f} ms assumed, 1 webhook/order)",
        f"{ORDERS:,} x {WEBHOOK_MS / 1000:.3f} s x 0.25 GB = {hook_gbs:,.0f} GB-s x ${PRICES['lambda_gb_s']}",
        hook_gbs * PRICES["lambda_gb_s"],
    )
    invocations = ORDERS / BATCH + ORDERS
    add(
        "Lambda requests (worker batches of 10 + 1 webhook per order)",
        f"({ORDERS:,} / {BATCH} + {ORDERS:,}) = {invocations:,.0f} x $0.20/1M",
        invocations * PRICES["lambda_request"],
    )
    sqs = ORDERS * (float(units.get("sqs", 0)) + 1)
    add(
        "SQS requests (measured per order, + 1 SendMessage by the webhook)",
        f"{ORDERS:,} x ({units.get('sqs', 0):.2f} + 1) = {sqs:,.0f} x $0.40/1M",
        sqs * PRICES["sqs_request"],
    )
    wru = ORDERS * (float(units.get("wru", 0)) + 1)
    add(
        "DynamoDB writes (measured WRU per order, + 1 webhook de-duplication put)",
        f"{ORDERS:,} x ({units.get('wru', 0):.2f} + 1) = {wru:,.0f} WRU x $0.625/1M",
        wru * PRICES["dynamo_wru"],
    )
    rru = ORDERS * float(units.get("rru", 0))
    add(
        "DynamoDB reads (measured RRU per order)",
        f"{ORDERS:,} x {units.get('rru', 0):.2f} = {rru:,.0f} RRU x $0.125/1M",
        rru * PRICES["dynamo_rru"],
    )
    add("API Gateway REST (1 webhook per order)", f"{ORDERS:,} x $3.50/1M", ORDERS * PRICES["apigw_request"])
    skip = {"measured": "realistic", "realistic": "measured"}
    totals = {label: sum(d for item, _a, d in lines if f"({other}:" not in item) for label, other in skip.items()}
    return {"lines": lines, "totals": totals, "prices": PRICES, "price_date": PRICE_DATE}
