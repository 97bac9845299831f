"""SAP's own Service Layer material against the sim and the client: the nine official request
examples are accepted by the sim (each on a fresh one, seeded with what it names), and the answers
SAP recorded in its user manual, served byte for byte (``/_sim/answers``), are read by erpsync's
client: the Login answer as a session, each error as the right erpsync error with SAP's code."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from starlette.testclient import TestClient

from erpsync.errors import AuthError, NotFoundError, ValidationFailed
from erpsync.systems.sap_b1.client import AlreadyExists, Missing, Refused, SapB1Client, Session, Unauthorised
from sandbox.sims import sap_b1
from tests.support.sap_b1 import FIXTURES, assert_answer, metadata

REQUESTS: dict[str, Any] = json.loads((FIXTURES / "request_examples.json").read_text())["examples"]
RESPONSES: list[dict[str, Any]] = json.loads((FIXTURES / "response_examples.json").read_text())["examples"]
LOGIN = {"CompanyDB": sap_b1.COMPANY_DB, "UserName": sap_b1.USERNAME, "Password": sap_b1.PASSWORD}


def recorded(page: int) -> Any:
    return next(r["body"] for r in RESPONSES if r["pdf_page"] == page)


def signed_in() -> TestClient:
    http = TestClient(sap_b1.create_app())
    assert http.post("/b1s/v1/Login", json=LOGIN).status_code == 200
    return http


def kept(sent: Any, answered: Any) -> bool:
    """What was sent is what is kept: numeric text as a number, an enum's DB value as its name."""
    if isinstance(sent, str) and isinstance(answered, int | float) and not isinstance(answered, bool):
        return Decimal(sent) == Decimal(str(answered))
    return bool(sent == answered) or any(e.members.get(answered) == sent for e in metadata().enums.values())


def seed_for(http: TestClient, target: str, body: dict[str, Any]) -> None:
    """The partner, items, tax codes and order the request names (never the record it creates)."""
    seed: dict[str, Any] = {}
    if not target.startswith("BusinessPartners") and body.get("CardCode"):
        seed["business_partners"] = [{"CardCode": body["CardCode"], "CardName": body["CardCode"]}]
    lines = body.get("DocumentLines") or []
    items = sorted({ln["ItemCode"] for ln in lines})
    if items:
        seed["items"] = [
            {"ItemCode": i, "ItemWarehouseInfoCollection": [{"WarehouseCode": "01", "InStock": 1000}]} for i in items
        ]
    if any(ln.get("TaxCode") for ln in lines):
        seed["tax_codes"] = {ln["TaxCode"]: 0 for ln in lines if ln.get("TaxCode")}
    if target.startswith("Orders("):
        seed.setdefault("business_partners", [{"CardCode": "c001", "CardName": "c001"}])
        seed["items"] = [{"ItemCode": "i001"}]
        seed["orders"] = [
            {
                "DocEntry": 123,
                "CardCode": "c001",
                "DocDueDate": "2014-04-04",
                "DocumentLines": [{"ItemCode": "i001", "Quantity": 1}],
            }
        ]
    assert http.post("/_sim/seed", json=seed).status_code == 200


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_each_official_request_example_is_accepted(name: str) -> None:
    method, target = name.split(" ", 1)
    body = REQUESTS[name]
    http = signed_in()
    seed_for(http, target, body)
    r = http.request(method, f"/b1s/v1/{target}", json=body)
    entity_set = target.split("(", 1)[0]
    if method == "PATCH":
        assert r.status_code == 204, r.text
        r = http.get(f"/b1s/v1/{target}")
        assert r.json()["Comments"] == body["Comments"]
    else:
        assert r.status_code == 201, r.text
        answered = r.json()
        for key, value in body.items():
            if not isinstance(value, list):
                assert kept(value, answered[key]), (key, value, answered[key])
    assert_answer(entity_set, r.json())


def test_the_official_order_example_is_priced_by_the_sim() -> None:
    http = signed_in()
    seed_for(http, "Orders", REQUESTS["POST Orders"])
    made = http.post("/b1s/v1/Orders", json=REQUESTS["POST Orders"]).json()
    line = made["DocumentLines"][0]
    assert (line["Quantity"], line["UnitPrice"], line["LineTotal"], made["DocTotal"]) == (100, 30, 3000, 3000)


def client_for(http: TestClient) -> SapB1Client:
    return SapB1Client("http://testserver", sap_b1.COMPANY_DB, sap_b1.USERNAME, sap_b1.PASSWORD, http=http)


def test_the_recorded_login_answer_is_a_session() -> None:
    http = TestClient(sap_b1.create_app())
    answer = {
        "method": "POST",
        "path": "/b1s/v1/Login",
        "body": recorded(14),
        "headers": {"Set-Cookie": "ROUTEID=.node4; Path=/b1s"},
    }
    http.post("/_sim/answers", json={"answers": [answer]})
    assert client_for(http).session() == Session("PTRzIjYK-weN6-1Lx1-ZG0J-3ARxfjcU0Shy", ".node4", 30)


def test_the_recorded_select_answer_is_read_as_rows() -> None:
    http = signed_in()
    http.post("/_sim/answers", json={"answers": [{"method": "GET", "path": "/b1s/v1/Orders", "body": recorded(40)}]})
    rows = list(client_for(http).rows("Orders", select=["CardCode", "DocEntry"]))
    assert [(r["CardCode"], r["DocEntry"]) for r in rows] == [("c001", 2), ("c002", 3), ("c001", 5), ("c001", 6)]


ERRORS = [  # (pdf page, the HTTP status served with it (UNVERIFIED: the manual prints bodies only), the error)
    (26, 400, Refused),
    (49, 400, Refused),
    (65, 400, Refused),
    (87, 400, AlreadyExists),
    (89, 404, Missing),
    (138, 400, Refused),
    (160, 400, Refused),
    (166, 400, Refused),
    (170, 403, Unauthorised),
    (172, 400, Refused),
]


@pytest.mark.parametrize(("page", "status", "error"), ERRORS)
def test_each_recorded_error_is_the_right_erpsync_error(page: int, status: int, error: type[Exception]) -> None:
    http = signed_in()
    body = recorded(page)
    http.post(
        "/_sim/answers",
        json={"answers": [{"method": "GET", "path": "/b1s/v1/Orders(7)", "status": status, "body": body}]},
    )
    client = client_for(http)
    with pytest.raises(error) as caught:
        client.get("Orders", 7)
    exc = caught.value
    assert exc.code == body["error"]["code"] and isinstance(exc.code, int)  # type: ignore[attr-defined]
    assert body["error"]["message"]["value"] in str(exc)
    family = {
        Refused: ValidationFailed,
        AlreadyExists: ValidationFailed,
        Missing: NotFoundError,
        Unauthorised: AuthError,
    }
    assert isinstance(exc, family[error])


def test_the_recorded_session_timeout_signs_in_again_then_is_auth_error() -> None:
    http = signed_in()
    answer = {"method": "GET", "path": "/b1s/v1/Orders(7)", "status": 401, "body": recorded(15), "times": 2}
    http.post("/_sim/answers", json={"answers": [answer]})
    client = client_for(http)
    with pytest.raises(Unauthorised) as caught:
        client.get("Orders", 7)
    assert caught.value.code == 301 and client.logins == 2
    assert len(ERRORS) + 1 == sum(1 for r in RESPONSES if "error" in r["body"])  # every recorded error is covered
