"""The console app on moto (no browser): pages render the desk, the sync log, breakers, queues and
settings; text from records is escaped; a change needs the CSRF token and a skip needs a note; only
loopback host names are answered."""

from __future__ import annotations

import os
import re
from typing import Any

import pytest
from starlette.testclient import TestClient

from cli.console_app import create_app
from cli.console_app.data import LocalOps
from erpsync.state.failures import Failure, FailuresDesk
from erpsync.state.settings import SettingsStore
from erpsync.state.synclog import LogRow, SyncLog

EVIL = "<script>window.pwned=1</script> [/b] no stock item 24-UG01"


@pytest.fixture
def client(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setenv("BINDINGS_TABLE", aws["tables"]["BindingsTable"])
    monkeypatch.setenv("SYNC_LOG_TABLE", aws["tables"]["SyncLogTable"])
    monkeypatch.setenv("QUEUE_URL_PREFIX", str(aws["queues"]["OrdersQueue"]).removesuffix("orders"))
    desk = FailuresDesk(os.environ["BINDINGS_TABLE"])
    desk.record(
        Failure("orders", "magento", "7", entity="order", target="acumatica", error_type="unknown_item", reason=EVIL)
    )
    desk.record(
        Failure(
            "orders",
            "magento",
            "8",
            entity="order",
            target="acumatica",
            error_type="mapping_missing",
            reason="no ShipVia",
        )
    )
    log = SyncLog(os.environ["SYNC_LOG_TABLE"])
    log.write(LogRow("orders", "magento", "7", "failed", "acumatica", error_type="unknown_item", message=EVIL))
    log.write(LogRow("orders", "magento", "6", "synced", "acumatica", target_id="SO000006"))
    return TestClient(create_app(LocalOps()), base_url="http://127.0.0.1", follow_redirects=False)


def csrf(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]


def test_overview_counts_the_sync_log_the_desk_breakers_and_queues(client: TestClient) -> None:
    res = client.get("/")
    assert res.status_code == 200 and "default-src 'none'" in res.headers["content-security-policy"]
    orders = re.search(r'<tr data-flow="orders">(.*?)</tr>', res.text).group(1)  # type: ignore[union-attr]
    assert orders.count("<svg") == 2 and "1 synced, 1 failed, 0 retrying" in orders
    assert re.search(r'class="n open"><a href="/failures\?flow=orders">2</a>', orders)
    assert 'id="breakers"' in res.text and "<th>acumatica</th>" in res.text and "closed" in res.text
    assert re.search(r'<tr><th>orders</th>(<td class="n">0</td>){4}</tr>', res.text)


def test_failures_desk_escapes_what_records_say(client: TestClient) -> None:
    res = client.get("/failures", params={"flow": "orders"})
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt; [/b]" in res.text
    assert "<script>window" not in res.text
    assert "2 open failures" in res.text
    only = client.get("/failures", params={"error_type": "mapping_missing"}).text
    assert 'value="orders#magento#8"' in only and 'value="orders#magento#7"' not in only


def test_a_change_needs_the_token_and_a_skip_needs_a_note(client: TestClient) -> None:
    token = csrf(client.get("/failures").text)
    forged = client.post("/failures", data={"csrf": "guess", "skip_one": "orders#magento#7", "note": "x"})
    assert forged.status_code == 403
    no_note = client.post("/failures", data={"csrf": token, "key": ["orders#magento#7"], "act": "skip"})
    assert no_note.status_code == 303 and "err=a+skip+needs+a+note" in no_note.headers["location"]
    done = client.post(
        "/failures",
        data={"csrf": token, "key": ["orders#magento#7", "orders#magento#8"], "act": "skip", "note": "<b>fixed</b>"},
    )
    assert done.status_code == 303 and done.headers["location"].startswith("/failures?msg=skip+orders")
    page = client.get(done.headers["location"]).text
    assert "skip orders: 2 skipped" in page and "0 open failures" in page
    assert "skipped_by_operator" in page and "&lt;b&gt;fixed&lt;/b&gt;" in page


def test_record_page_shows_every_attempt_and_both_sides(client: TestClient) -> None:
    page = client.get("/record", params={"flow": "orders", "id": "7"}).text
    assert "magento 7 has no record on acumatica yet" in page
    assert 'id="failure"' in page and "unknown_item" in page and "&lt;script&gt;" in page
    assert "Every attempt (1)" in page


def test_settings_page_shows_versions_and_a_diff(client: TestClient) -> None:
    store = SettingsStore(os.environ["BINDINGS_TABLE"])
    store.update({"tax_id": "STORETAX"}, actor="ann")
    store.update({"tax_id": "<i>OTHER</i>"}, actor="bob")
    page = client.get("/settings", params={"a": "1", "b": "2"}).text
    assert "Version 2 is in force" in page and "<td>bob</td>" in page
    assert "<code>tax_id</code>: &quot;STORETAX&quot; &rarr; &quot;&lt;i&gt;OTHER&lt;/i&gt;&quot;" in page
    assert "no settings version 9" in client.get("/settings", params={"a": "1", "b": "9"}).text


def test_only_loopback_host_names_are_answered(client: TestClient) -> None:
    assert client.get("/", headers={"host": "evil.example:8765"}).status_code == 400
    assert client.get("/static/console.js").headers["content-type"].startswith("text/javascript")
