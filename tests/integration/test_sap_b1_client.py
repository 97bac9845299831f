"""erpsync's Service Layer client against the B1 sim: one sign-in reused with both cookies, one new
sign-in when the session dies (also in the middle of paging, where the page is then read once), a
refused sign-in as AuthError, SAP's errors as erpsync's types with SAP's code, money as Decimal."""

from __future__ import annotations

import threading
import time
from collections import Counter
from decimal import Decimal
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from erpsync.errors import AuthError, OutageError, RateLimitedError, RetryableError, may_have_been_applied
from erpsync.systems.sap_b1.client import AlreadyExists, Missing, Refused, SapB1Client, Session, Unauthorised, literal
from sandbox.sims import sap_b1


class Rig:
    def __init__(self, version: str = "v1") -> None:
        self.app = sap_b1.create_app()
        self.http = TestClient(self.app)
        self.sim: sap_b1.SapB1Sim = self.app.state.sim
        self.client = SapB1Client(
            "http://testserver", sap_b1.COMPANY_DB, sap_b1.USERNAME, sap_b1.PASSWORD, version=version, http=self.http
        )
        self.http.post(
            "/_sim/seed",
            json={
                "tax_codes": {"T1": 7.5},
                "business_partners": [{"CardCode": "c001", "CardName": "c001"}],
                "items": [{"ItemCode": "i001", "ItemName": "Item1"}],
            },
        )

    def log(self) -> list[dict[str, Any]]:
        return list(self.http.get("/_sim/requests").json()["requests"])


@pytest.fixture
def rig() -> Rig:
    return Rig()


ORDER = {
    "CardCode": "c001",
    "DocDueDate": "2014-04-04",
    "DocumentLines": [{"ItemCode": "i001", "Quantity": 3, "UnitPrice": Decimal("19.99"), "TaxCode": "T1"}],
}


def test_one_sign_in_is_reused_and_both_cookies_go_back_explicitly(rig: Rig) -> None:
    assert rig.client.logins == 0
    rig.client.create("Orders", ORDER)
    rig.http.cookies.clear()  # what the HTTP client kept from Set-Cookie plays no part
    assert rig.client.get("Orders", 1)["DocEntry"] == 1
    assert list(rig.client.rows("Orders")) and rig.client.logins == 1
    assert rig.sim.config.require_route_id  # without ROUTEID the sim answers 301


def test_money_comes_back_as_decimal(rig: Rig) -> None:
    made = rig.client.create("Orders", ORDER)
    assert made["DocTotal"] == Decimal("64.47") and isinstance(made["DocTotal"], Decimal)
    assert made["DocumentLines"][0]["UnitPrice"] == Decimal("19.99") and made["DocEntry"] == 1


def test_a_dead_session_signs_in_again_once(rig: Rig) -> None:
    rig.client.get("Items", "i001")
    rig.http.post("/_sim/sessions/expire")
    rig.client.update("Items", "i001", {"ItemName": "renamed"})
    assert rig.client.get("Items", "i001")["ItemName"] == "renamed" and rig.client.logins == 2
    patches = [r for r in rig.log() if r["method"] == "PATCH"]
    assert [p["status"] for p in patches] == [401, 204]


def test_expiry_in_the_middle_of_paging_signs_in_once_and_reads_each_page_once(rig: Rig) -> None:
    rig.http.post("/_sim/seed", json={"business_partners": [{"CardCode": f"P{n:02d}"} for n in range(44)]})
    got: list[str] = []
    for n, page in enumerate(rig.client.pages("BusinessPartners", orderby="CardCode", page_size=20)):
        got += [row["CardCode"] for row in page]
        if n == 0:
            rig.http.post("/_sim/sessions/expire")
    assert got == sorted([f"P{n:02d}" for n in range(44)] + ["c001"])
    assert rig.client.logins == 2
    reads = [(r["query"], r["status"]) for r in rig.log() if r["path"] == "/b1s/v1/BusinessPartners"]
    answered = Counter(q for q, s in reads if s == 200)
    assert len(answered) == 3 and set(answered.values()) == {1}
    assert [s for _q, s in reads] == [200, 401, 200, 200]


def test_a_refused_sign_in_is_auth_error_and_a_changed_secret_is_tried() -> None:
    rig = Rig()
    rig.client.password = "wrong"
    with pytest.raises(AuthError) as caught:
        rig.client.get("Items", "i001")
    assert isinstance(caught.value, Unauthorised) and caught.value.code == 100000027 and rig.client.logins == 0
    rig.client.credentials = lambda: (sap_b1.USERNAME, sap_b1.PASSWORD)
    assert rig.client.get("Items", "i001")["ItemCode"] == "i001" and rig.client.logins == 1


def test_a_session_refused_again_after_signing_in_is_auth_error(rig: Rig) -> None:
    body = {
        "error": {"code": 301, "message": {"lang": "en-us", "value": "Invalid session or session already timeout."}}
    }
    answers = [{"method": "GET", "path": "/b1s/v1/Orders", "status": 401, "body": body, "times": 2}]
    rig.http.post("/_sim/answers", json={"answers": answers})
    with pytest.raises(Unauthorised) as caught:
        list(rig.client.rows("Orders"))
    assert caught.value.code == 301 and caught.value.status == 401 and rig.client.logins == 2
    assert "Invalid session or session already timeout." in str(caught.value)


def test_sap_errors_become_erpsync_errors_with_sap_s_code(rig: Rig) -> None:
    with pytest.raises(AlreadyExists) as exists:
        rig.client.create("Items", {"ItemCode": "i001"})
    assert exists.value.code == -10 and "Item code 'i001' already exists" in str(exists.value)
    with pytest.raises(Missing) as missing:
        rig.client.get("Orders", 99)
    assert missing.value.code == -2028
    with pytest.raises(Refused) as refused:
        rig.client.create("Orders", {**ORDER, "DocDueDate": None})
    assert refused.value.code == -5002 and refused.value.status == 400 and "DocDueDate" in str(refused.value)
    with pytest.raises(Refused) as invalid:
        list(rig.client.rows("Orders", filter="DocStatus eq 'O'"))
    assert invalid.value.code == -1000 and "Property 'DocStatus' of 'Document' is invalid" in str(invalid.value)


def test_server_trouble_is_retryable_and_a_lost_answer_may_have_been_applied(rig: Rig) -> None:
    rig.client.session()
    rig.http.post("/_sim/faults", json={"outage": True})
    with pytest.raises(OutageError):
        rig.client.get("Items", "i001")
    rig.http.post("/_sim/faults", json={"lost_response_rate": 1.0})
    with pytest.raises(RetryableError) as lost:
        rig.client.create("Orders", ORDER)
    assert lost.value.status == 504 and may_have_been_applied(lost.value)
    assert list(rig.sim.records["Orders"]) == [1]  # applied although the answer was lost


def test_throttling_and_server_errors_are_retryable(rig: Rig) -> None:
    rig.client.session()
    rig.http.post("/_sim/faults", json={"throttle_rate": 1.0, "retry_after_s": 60})
    with pytest.raises(RateLimitedError) as throttled:
        rig.client.get("Items", "i001")
    assert throttled.value.retry_after == 60
    rig.http.post("/_sim/faults", json={"error_rate": 1.0})
    with pytest.raises(RetryableError) as failed:
        rig.client.get("Items", "i001")
    assert failed.value.status == 500 and not isinstance(failed.value, OutageError | RateLimitedError)


def test_the_v2_variant_pages_and_errors() -> None:
    rig = Rig("v2")
    rig.http.post("/_sim/seed", json={"business_partners": [{"CardCode": f"P{n}"} for n in range(4)]})
    assert len(list(rig.client.rows("BusinessPartners", page_size=2))) == 5
    with pytest.raises(Missing) as missing:
        rig.client.get("Orders", 5)
    assert missing.value.code == -2028  # "-2028" on the wire
    with pytest.raises(ValueError, match="v1 or v2"):
        SapB1Client("http://x", "db", "u", "p", version="v3")


def test_close_signs_out(rig: Rig) -> None:
    rig.client.session()
    assert rig.http.get("/_sim/sessions").json()["live"] == 1
    rig.client.close()
    assert rig.http.get("/_sim/sessions").json()["live"] == 0


def test_keys_and_filter_values_are_odata_literals() -> None:
    assert (literal(12), literal("C001"), literal("O'Brien")) == ("12", "'C001'", "'O''Brien'")
    with pytest.raises(TypeError):
        literal(True)


def test_concurrent_callers_with_one_dead_session_sign_in_once() -> None:
    """Five threads get 401 for the same session: one new sign-in between them (a licence each)."""
    lock = threading.Lock()
    all_sent = threading.Barrier(5)
    state = {"logins": 0, "live": ""}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Login"):
            time.sleep(0.05)  # a slow sign-in widens the race
            with lock:
                state["logins"] += 1
                state["live"] = f"S{state['logins']}"
                sid = state["live"]
            return httpx.Response(
                200, json={"SessionId": sid, "SessionTimeout": 30}, headers={"Set-Cookie": "ROUTEID=.node2"}
            )
        cookie = request.headers.get("cookie", "")
        if "B1SESSION=S1;" in cookie + ";" and state["live"] == "gone":
            all_sent.wait(timeout=5)  # every thread has sent with the dead session before any is answered
        if f"B1SESSION={state['live']};" not in cookie + ";" or "ROUTEID=.node2" not in cookie:
            return httpx.Response(401, json={"error": {"code": 301, "message": {"lang": "en-us", "value": "x"}}})
        return httpx.Response(200, json={"ItemCode": "i001"})

    client = SapB1Client("http://sl", "db", "u", "p", http=httpx.Client(transport=httpx.MockTransport(handler)))
    assert client.session() == Session("S1", ".node2", 30)
    state["live"] = "gone"  # the server forgot the session
    errors: list[BaseException] = []

    def read() -> None:
        try:
            client.get("Items", "i001")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and state["logins"] == 2 and client.logins == 2
