"""The small version of ``bench.poll_memory``: a poll streams, page by page, whatever the number of
changes (the structure behind flat memory; the benchmark measures the RSS)."""

from __future__ import annotations

from typing import Any

import pytest

from bench import poll_memory


@pytest.mark.parametrize("kind", ["orders", "shipments", "customers"])
def test_a_poll_enqueues_each_page_before_it_reads_the_next(kind: str) -> None:
    requests_at_send: list[int] = []

    def on_send(server: Any, sqs: poll_memory.StubSqs) -> None:
        requests_at_send.append(server.requests)

    out = poll_memory.poll_once(kind, 450, on_send=on_send)
    assert out["enqueued"] == 450 and out["cursor_at_end"]
    assert out["sqs_batches"] == len(requests_at_send) >= 45
    # the first notices went out after at most one page's requests (sign-in, a window cut, the page),
    # and the source was read on as the poll went: never all of it first
    assert requests_at_send[0] <= 3
    assert requests_at_send == sorted(requests_at_send) and requests_at_send[-1] <= out["requests"]
    assert requests_at_send[len(requests_at_send) // 2] < out["requests"]
    assert out["cursor_writes"] >= out["pages"] - 2  # a checkpoint per page (the first ones are behind the cursor)


def test_the_orders_poll_reads_one_search_page_per_hundred_orders() -> None:
    out = poll_memory.poll_once("orders", 450)
    assert out["pages"] == 5 and out["requests"] == 1 + 5  # the token, then one page each


def test_the_memory_benchmark_runs_in_a_child_process() -> None:
    r = poll_memory.run(runs=1, sizes=(150,), kinds=("customers",))
    [row] = r["rows"]
    assert row["complete"] and row["enqueued"] == 150 and row["peak_rss_mb"] >= row["rss_before_mb"] > 0
