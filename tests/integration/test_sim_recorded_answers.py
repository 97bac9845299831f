"""The sims' recorded answers (``POST /_sim/answers``, sandbox/sims/control.py): a real system's
answer served instead of the sim's own for the request it names, counted down, never applied,
logged as ``recorded``; a malformed one refused naming what is wrong."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from sandbox.sims.acumatica import create_app as acumatica
from sandbox.sims.shopify import create_app as shopify

GRAPHQL = "/admin/api/2025-01/graphql.json"


def test_a_recorded_answer_is_served_for_its_request_only_and_as_often_as_asked() -> None:
    c = TestClient(shopify())
    recorded = {"data": {"fulfillmentCreate": {"fulfillment": None, "userErrors": [{"message": "recorded"}]}}}
    queued = c.post(
        "/_sim/answers",
        json={
            "answers": [
                {
                    "method": "POST",
                    "path_regex": r"/admin/api/[^/]+/graphql\.json",
                    "body_contains": "fulfillmentCreate",
                    "body": recorded,
                    "headers": {"X-Recorded": "yes"},
                    "times": 2,
                }
            ]
        },
    )
    assert queued.status_code == 200 and len(queued.json()["answers"]) == 1
    other = c.post(GRAPHQL, json={"query": "{ shop { name } }"})
    assert other.status_code == 401  # not the named request: the sim's own answer (no token here)
    for _ in range(2):
        got = c.post(
            GRAPHQL, json={"query": "mutation { fulfillmentCreate(fulfillment: {}) { userErrors { message } } }"}
        )
        assert (got.status_code, got.json(), got.headers["x-recorded"]) == (200, recorded, "yes")
    assert c.get("/_sim/answers").json() == {"answers": []}
    third = c.post(GRAPHQL, json={"query": "mutation { fulfillmentCreate }"})
    assert third.status_code == 401
    faults = [r["fault"] for r in c.get("/_sim/requests").json()["requests"]]
    assert faults == [None, "recorded", "recorded", None]


def test_a_recorded_answer_applies_nothing_and_reset_forgets_it() -> None:
    c = TestClient(acumatica())
    c.post(
        "/_sim/answers",
        json={
            "answers": [
                {
                    "method": "PUT",
                    "path": "/entity/Default/24.200.001/SalesOrder",
                    "status": 500,
                    "body": "recorded text",
                }
            ]
        },
    )
    got = c.put("/entity/Default/24.200.001/SalesOrder", json={"OrderType": {"value": "SO"}})
    assert (got.status_code, got.text) == (500, "recorded text")
    c.post("/_sim/answers", json={"answers": [{"method": "GET", "path": "/entity"}]})
    assert c.post("/_sim/reset").status_code == 204
    assert c.get("/_sim/answers").json() == {"answers": []}
    assert c.get("/entity").status_code == 200 and "endpoints" in c.get("/entity").text.lower()


@pytest.mark.parametrize(
    ("answer", "named"),
    [
        ({"method": "POST"}, "path or path_regex"),
        ({"method": "POST", "path": "/a", "path_regex": "/a"}, "path or path_regex"),
        ({"method": "POST", "path_regex": "(unclosed"}, "not a regular expression"),
        ({"method": "POST", "path": "/a", "status": 99}, "status"),
        ({"method": "POST", "path": "/a", "times": 0}, "times"),
        ({"method": "POST", "path": "/a", "surprise": 1}, "surprise"),
    ],
)
def test_a_malformed_recorded_answer_is_refused_naming_what_is_wrong(answer: dict[str, object], named: str) -> None:
    c = TestClient(shopify())
    got = c.post("/_sim/answers", json={"answers": [answer]})
    assert got.status_code == 400 and named in got.json()["error"], got.json()
    assert c.get("/_sim/answers").json() == {"answers": []}
