"""The sims' shared fault injection (``sandbox/sims/control.py``): lost responses.

A lost response applies the write and throws the answer away: the caller gets a 504 (mode "504")
or no answer at all (mode "drop"), yet a later read finds the record. Reads, sign-ins and control
requests are never lost, and the lost-response dice leave the other faults' rolls alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from sandbox.local.stack import ServerThread
from sandbox.sims import acumatica, magento
from sandbox.sims.magento_orders import sample_customer

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

M = "/rest/default/V1"
A = "/entity/Default/24.200.001"
LOST_504 = {"lost_response_rate": 1}
LOST_DROP = {"lost_response_rate": 1, "lost_response_mode": "drop"}


def magento_token(c: httpx.Client) -> dict[str, str]:
    token = c.post(f"{M}/integration/admin/token", json={"username": "admin", "password": "admin123"})
    assert token.status_code == 200
    return {"Authorization": f"Bearer {token.json()}"}


def acumatica_login(c: httpx.Client) -> None:
    assert (
        c.post("/entity/auth/login", json={"name": "admin", "password": "123", "company": "Company"}).status_code == 204
    )


def magento_customers(c: httpx.Client, auth: dict[str, str], email: str) -> list[dict[str, Any]]:
    params = {
        "searchCriteria[filter_groups][0][filters][0][field]": "email",
        "searchCriteria[filter_groups][0][filters][0][value]": email,
    }
    found = c.get(f"{M}/customers/search", params=params, headers=auth)
    assert found.status_code == 200
    return list(found.json()["items"])


def requests_log(c: httpx.Client) -> list[dict[str, Any]]:
    return list(c.get("/_sim/requests").json()["requests"])


def acumatica_customer(cid: str) -> dict[str, Any]:
    return {"CustomerID": {"value": cid}, "CustomerName": {"value": f"Lost {cid}"}}


@pytest.fixture
def served() -> Iterator[dict[str, str]]:
    """Both sims under uvicorn, each on a free loopback port; name -> base URL."""
    servers = [ServerThread(magento.create_app(), "magento"), ServerThread(acumatica.create_app(), "acumatica")]
    try:
        for server in servers:
            server.start()
        yield {"magento": servers[0].url, "acumatica": servers[1].url}
    finally:
        for server in servers:
            server.stop()


# -- mode "504" ----------------------------------------------------------------------------------


def test_magento_customer_post_is_applied_but_answered_504() -> None:
    c = TestClient(magento.create_app())
    auth = magento_token(c)
    assert c.post("/_sim/faults", json=LOST_504).status_code == 200
    assert magento_token(c)  # signing in is never lost
    lost = c.post(f"{M}/customers", json={"customer": sample_customer("lost@example.com")}, headers=auth)
    assert lost.status_code == 504 and lost.json() == {"message": "Gateway Timeout"}
    [saved] = magento_customers(c, auth, "lost@example.com")  # GETs are never lost
    assert saved["firstname"] == sample_customer()["firstname"]
    again = c.post(f"{M}/customers", json={"customer": sample_customer("lost@example.com")}, headers=auth)
    assert again.status_code == 504  # a blind retry: applied (refused as a duplicate), answer lost too
    rows = requests_log(c)
    assert [(r["method"], r["status"], r["fault"], r["applied_status"]) for r in rows] == [
        ("POST", 200, None, 200),  # the first token (before the faults)
        ("POST", 200, None, 200),  # the token under the fault
        ("POST", 504, "lost_response", 200),
        ("GET", 200, None, 200),
        ("POST", 504, "lost_response", 400),
    ]


def test_acumatica_customer_put_is_applied_but_answered_504() -> None:
    c = TestClient(acumatica.create_app())
    c.post("/_sim/faults", json=LOST_504)
    acumatica_login(c)  # signing in is never lost
    lost = c.put(f"{A}/Customer", json=acumatica_customer("LOST1"))
    assert lost.status_code == 504
    assert lost.json()["message"] == "An error has occurred." and lost.json()["exceptionMessage"] == "Gateway Timeout"
    found = c.get(f"{A}/Customer/LOST1")
    assert found.status_code == 200 and found.json()["CustomerName"]["value"] == "Lost LOST1"
    assert c.post("/entity/auth/logout").status_code == 204
    rows = requests_log(c)
    assert [(r["method"], r["path"], r["status"], r["fault"], r["applied_status"]) for r in rows] == [
        ("POST", "/entity/auth/login", 204, None, 204),
        ("PUT", f"{A}/Customer", 504, "lost_response", 200),
        ("GET", f"{A}/Customer/LOST1", 200, None, 200),
        ("POST", "/entity/auth/logout", 204, None, 204),
    ]


def test_other_faults_answer_first_and_have_no_applied_status() -> None:
    c = TestClient(acumatica.create_app())
    acumatica_login(c)
    c.post("/_sim/faults", json={**LOST_504, "outage": True})
    assert c.put(f"{A}/Customer", json=acumatica_customer("NEVER")).status_code == 503
    c.delete("/_sim/faults")
    assert c.get(f"{A}/Customer/NEVER").status_code == 404  # the outage stopped it: nothing applied
    row = requests_log(c)[1]
    assert row["fault"] == "outage" and row["status"] == 503 and row["applied_status"] is None


# -- mode "drop" ---------------------------------------------------------------------------------


def test_dropped_over_uvicorn_the_client_gets_a_transport_error(served: dict[str, str]) -> None:
    with (
        httpx.Client(base_url=served["magento"], timeout=10) as m,
        httpx.Client(base_url=served["acumatica"], timeout=10) as a,
    ):
        auth = magento_token(m)
        acumatica_login(a)
        for c in (m, a):
            assert c.post("/_sim/faults", json=LOST_DROP).status_code == 200

        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            m.post(f"{M}/customers", json={"customer": sample_customer("dropped@example.com")}, headers=auth)
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            a.put(f"{A}/Customer", json=acumatica_customer("DROP1"))

        # the writes were applied; the same clients read them on new connections
        assert [x["email"] for x in magento_customers(m, auth, "dropped@example.com")] == ["dropped@example.com"]
        assert a.get(f"{A}/Customer/DROP1").json()["CustomerName"]["value"] == "Lost DROP1"
        assert magento_token(m)  # sign-in stays answered
        for c, path in ((m, f"{M}/customers"), (a, f"{A}/Customer")):
            [row] = [r for r in requests_log(c) if r["fault"]]
            assert (row["method"] in ("POST", "PUT")) and row["path"] == path
            assert row["status"] == 0 and row["applied_status"] == 200 and row["fault"] == "lost_response"


def test_dropped_in_process_the_app_raises_a_transport_error() -> None:
    # an in-process ASGI transport has no connection to close: the app raises ResponseDropped,
    # an httpx.RemoteProtocolError, and the transport hands it to the caller
    app: Starlette = acumatica.create_app()
    c = TestClient(app)
    acumatica_login(c)
    c.post("/_sim/faults", json=LOST_DROP)
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        c.put(f"{A}/Customer", json=acumatica_customer("DROP2"))
    assert c.get(f"{A}/Customer/DROP2").status_code == 200


# -- dice and validation -------------------------------------------------------------------------


def _faults_seen(faults: dict[str, Any], count: int = 60) -> list[str | None]:
    """The fault of each of ``count`` alternating reads and writes to a fresh Magento sim."""
    c = TestClient(magento.create_app())
    auth = magento_token(c)
    c.post("/_sim/faults", json=faults)
    for i in range(count):
        if i % 2:
            c.post(f"{M}/customers", json={"customer": sample_customer(f"c{i}@example.com")}, headers=auth)
        else:
            c.get(f"{M}/customers/search", headers=auth)
    return [r["fault"] for r in requests_log(c)[1:]]


def test_lost_response_dice_do_not_move_the_other_faults() -> None:
    others = {"error_rate": 0.2, "throttle_rate": 0.2, "seed": 7}
    without = _faults_seen(others)
    with_lost = _faults_seen({**others, "lost_response_rate": 0.5})
    assert "error" in without and "throttle" in without
    assert [f if f != "lost_response" else None for f in with_lost] == without  # the same requests faulted
    lost_at = [i for i, f in enumerate(with_lost) if f == "lost_response"]
    assert lost_at and all(i % 2 for i in lost_at)  # only writes (odd requests) are lost
    assert _faults_seen({**others, "lost_response_rate": 0.5}) == with_lost  # the seed repeats them


@pytest.mark.parametrize(
    "bad", [{"lost_response_rate": 1.5}, {"lost_response_rate": -0.1}, {"lost_response_mode": "timeout"}]
)
def test_lost_response_settings_are_validated(bad: dict[str, Any]) -> None:
    c = TestClient(magento.create_app())
    assert c.post("/_sim/faults", json=bad).status_code == 400
    shown = c.get("/_sim/faults").json()
    assert shown["lost_response_rate"] == 0 and shown["lost_response_mode"] == "504"


def test_a_path_of_its_own_loses_its_answers_at_its_own_rate() -> None:
    c = TestClient(acumatica.create_app())
    acumatica_login(c)
    c.post("/_sim/faults", json={"lost_response_paths": {f"{A}/Customer": 1}})
    assert c.put(f"{A}/Customer", json=acumatica_customer("PATHLOST")).status_code == 504
    assert c.get(f"{A}/Customer/PATHLOST").status_code == 200  # applied all the same
    assert c.put(f"{A}/SalesOrder", json={}).status_code != 504  # another path keeps lost_response_rate (0)
    faults = [(r["method"], r["path"], r["fault"]) for r in requests_log(c)[1:]]
    assert faults[0] == ("PUT", f"{A}/Customer", "lost_response") and faults[2][2] is None


@pytest.mark.parametrize("bad", [{"lost_response_paths": {".*": 2}}, {"lost_response_paths": {"(": 0.5}}])
def test_lost_response_paths_are_validated(bad: dict[str, Any]) -> None:
    c = TestClient(magento.create_app())
    assert c.post("/_sim/faults", json=bad).status_code == 400
    assert c.get("/_sim/faults").json()["lost_response_paths"] == {}
