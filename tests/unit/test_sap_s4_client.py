"""erpsync's S/4HANA client against a scripted stand-in (``httpx.MockTransport``): the recorded
request sequence (CSRF token by ``HEAD`` with ``X-CSRF-Token: Fetch``, then the deep insert with the
token and the session cookies), one token per service root, a 403 ``Required`` fetched again once,
etags sent verbatim and a 412 read again once, SAP's error bodies as erpsync's errors, ``sap-message``
warnings, paging by ``__next``, and the transport's failures typed."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from erpsync.errors import (
    AuthError,
    OutageError,
    RateLimitedError,
    RetryableError,
    ValidationFailed,
    may_have_been_applied,
)
from erpsync.systems.sap_s4.client import Missing, Refused, S4Client, Unauthorised, error_of
from tests.support.sap_s4_mock import (
    BASE,
    BILLING,
    DELIVERY,
    SO,
    MockS4,
    answer,
    csrf_required,
    recorded_deep_insert,
    recorded_requests,
    sap_error,
)

ETAG = "W/\"datetimeoffset'2005-10-24T15%3A36%3A52.0000000Z'\""


def created(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    items = [{**i, "SalesOrder": "4000043"} for i in body["to_Item"]["results"]]
    return answer(
        201,
        {"d": {**body, "SalesOrder": "4000043", "TotalNetAmount": "2656.24", "to_Item": {"results": items}}},
        {"ETag": ETAG},
    )


def test_the_recorded_sequence_token_by_head_then_the_deep_insert_with_token_and_cookies() -> None:
    recorded = recorded_requests()
    head = next(r for r in recorded if r["method"] == "HEAD")
    assert head["target"].endswith("/sap/opu/odata/sap/API_SALES_ORDER_SRV/")
    assert head["headers"]["X-CSRF-Token"].lower() == "fetch"
    mock = MockS4(lambda r: created(r) if r.method == "POST" else None)
    client = mock.client()
    made = client.create(SO, "A_SalesOrder", recorded_deep_insert())
    fetch, post = mock.requests
    assert (fetch.method, str(fetch.url)) == ("HEAD", f"{BASE}/{SO}/")
    assert fetch.headers["X-CSRF-Token"] == "Fetch"
    assert (post.method, str(post.url)) == ("POST", f"{BASE}/{SO}/A_SalesOrder")
    assert post.headers["X-CSRF-Token"] == "tok-1"
    assert post.headers["Cookie"] == "SAP_SESSIONID_S4H_100=s1; sap-usercontext=sap-client=100"
    assert post.headers["Content-Type"] == "application/json" and post.headers["Accept"] == "application/json"
    assert json.loads(post.content) == recorded_deep_insert()  # the recorded body, strings as strings
    assert b'"RequestedQuantity": "1"' in post.content
    user, _, password = base64.b64decode(post.headers["Authorization"].removeprefix("Basic ")).decode().partition(":")
    assert (user, password) == ("USER", "pw")
    assert made.entity["SalesOrder"] == "4000043" and made.etag == ETAG and made.warnings == []
    assert made.entity["TotalNetAmount"] == "2656.24"


def test_a_head_without_a_token_falls_back_to_get() -> None:
    def handler(request: httpx.Request) -> httpx.Response | None:
        if request.method == "HEAD":
            return httpx.Response(405)
        if request.method == "GET":
            return answer(200, {"d": {"EntitySets": ["A_SalesOrder"]}}, {"x-csrf-token": "from-get"})
        return answer(204)

    mock = MockS4(handler)
    mock.client().update(SO, "A_SalesOrder('1')", {"HeaderBillingBlockReason": ""}, etag=ETAG)
    assert [r.method for r in mock.requests] == ["HEAD", "GET", "PATCH"]
    assert mock.requests[1].headers["X-CSRF-Token"] == "Fetch"
    assert mock.requests[2].headers["X-CSRF-Token"] == "from-get"


def test_one_token_per_service_root_reused_for_every_write() -> None:
    mock = MockS4(lambda r: answer(204) if r.method in ("PATCH", "POST") else None)
    client = mock.client()
    client.update(SO, "A_SalesOrder('1')", {"X": "1"}, etag=ETAG)
    client.update(SO, "A_SalesOrder('2')", {"X": "1"}, etag=ETAG)
    client.update(DELIVERY, "A_OutbDeliveryHeader('80000000')", {"BillOfLading": "1Z"}, etag="W/\"'0001'\"")
    heads = [str(r.url) for r in mock.sent("HEAD")]
    assert heads == [f"{BASE}/{SO}/", f"{BASE}/API_OUTBOUND_DELIVERY_SRV;v=0002/"]
    tokens = [r.headers["X-CSRF-Token"] for r in mock.sent("PATCH")]
    assert tokens == ["tok-1", "tok-1", "tok-2"] and client.token_fetches == 2


def test_reads_carry_no_csrf_token() -> None:
    mock = MockS4(lambda r: answer(200, {"d": {"BillingDocument": "90000001"}}))
    mock.client().get(BILLING, S4Client.key("A_BillingDocument", "90000001"))
    (read,) = mock.requests
    assert "X-CSRF-Token" not in read.headers and read.method == "GET"
    assert str(read.url) == f"{BASE}/{BILLING}/A_BillingDocument('90000001')?$format=json"


def test_a_403_csrf_required_fetches_once_more_and_sends_once_more() -> None:
    posts = iter([csrf_required(), None])

    def handler(request: httpx.Request) -> httpx.Response | None:
        if request.method == "POST":
            return next(posts) or created(request)
        return None

    mock = MockS4(handler)
    made = mock.client().create(SO, "A_SalesOrder", recorded_deep_insert())
    assert made.entity["SalesOrder"] == "4000043"
    assert [r.method for r in mock.requests] == ["HEAD", "POST", "HEAD", "POST"]
    assert [r.headers["X-CSRF-Token"] for r in mock.sent("POST")] == ["tok-1", "tok-2"]
    assert mock.sent("POST")[1].headers["Cookie"].startswith("SAP_SESSIONID_S4H_100=s2")


def test_a_second_403_required_is_refused_after_one_refetch_only() -> None:
    mock = MockS4(lambda r: csrf_required() if r.method == "POST" else None)
    with pytest.raises(RetryableError) as refused:
        mock.client().create(SO, "A_SalesOrder", recorded_deep_insert())
    assert refused.value.status == 403 and refused.value.error_type == "csrf"
    assert not isinstance(refused.value, AuthError) and not may_have_been_applied(refused.value)
    assert [r.method for r in mock.requests] == ["HEAD", "POST", "HEAD", "POST"]


def test_a_403_that_is_not_csrf_is_not_retried() -> None:
    mock = MockS4(
        lambda r: sap_error(403, "/IWFND/CM_CONSUMER/101", "No authorization") if r.method == "POST" else None
    )
    with pytest.raises(Unauthorised) as refused:
        mock.client().create(SO, "A_SalesOrder", {})
    assert refused.value.code == "/IWFND/CM_CONSUMER/101"
    assert [r.method for r in mock.requests] == ["HEAD", "POST"]


def test_the_etag_goes_back_verbatim_and_a_412_reads_again_once() -> None:
    fresh = "W/\"datetimeoffset'2005-10-24T15%3A40%3A00.0000000Z'\""
    patches = iter([sap_error(412, "/IWBEP/CM_MGW_RT/022", "Precondition failed"), answer(204)])

    def handler(request: httpx.Request) -> httpx.Response | None:
        if request.method == "PATCH":
            return next(patches)
        if request.method == "GET":
            return answer(200, {"d": {"__metadata": {"etag": fresh}, "SalesOrder": "1"}})
        return None

    mock = MockS4(handler)
    mock.client().update(SO, "A_SalesOrder('1')", {"PurchaseOrderByCustomer": "x"}, etag=ETAG)
    assert [r.headers["If-Match"] for r in mock.sent("PATCH")] == [ETAG, fresh]
    assert [r.method for r in mock.requests] == ["HEAD", "PATCH", "GET", "PATCH"]


def test_a_second_412_is_a_conflict_to_retry_later() -> None:
    def handler(request: httpx.Request) -> httpx.Response | None:
        if request.method == "PATCH":
            return sap_error(412, "/IWBEP/CM_MGW_RT/022", "Precondition failed")
        if request.method == "GET":
            return answer(200, {"d": {"SalesOrder": "1"}}, {"ETag": ETAG})
        return None

    mock = MockS4(handler)
    with pytest.raises(RetryableError) as conflict:
        mock.client().update(SO, "A_SalesOrder('1')", {"X": "1"})
    assert conflict.value.error_type == "conflict" and conflict.value.status == 412
    assert len(mock.sent("PATCH")) == 2 and all(r.headers["If-Match"] == ETAG for r in mock.sent("PATCH"))


def test_the_first_error_detail_of_severity_error_names_the_failure() -> None:
    details = [
        {"code": "V1/555", "message": "Just a note", "propertyref": "", "severity": "info", "target": ""},
        {
            "code": "SLS_LORD/033",
            "message": "Enter a sold-to party",
            "propertyref": "",
            "severity": "error",
            "target": "",
        },
        {"code": "V1/999", "message": "Second error", "propertyref": "", "severity": "error", "target": ""},
    ]
    mock = MockS4(lambda r: sap_error(400, "SLS_LORD/000", "Outer message", details) if r.method == "POST" else None)
    with pytest.raises(Refused) as refused:
        mock.client().create(SO, "A_SalesOrder", {})
    assert isinstance(refused.value, ValidationFailed)
    assert refused.value.code == "SLS_LORD/033" and refused.value.status == 400
    assert "Enter a sold-to party" in str(refused.value) and "Outer message" not in str(refused.value)


def test_without_an_error_detail_the_message_value_and_code_are_used() -> None:
    response = sap_error(400, "CX_SADL_ENTITY_SRCH_NOT_FOUND", "Property 'X' is invalid")
    assert error_of(response) == ("CX_SADL_ENTITY_SRCH_NOT_FOUND", "Property 'X' is invalid")
    where = [{"code": "V1/3", "message": "too long", "propertyref": "", "severity": "error", "target": "SoldToParty"}]
    assert error_of(sap_error(400, "V1/1", "Outer", where)) == ("V1/3", "SoldToParty: too long")
    warning_only = sap_error(400, "V1/1", "Outer", [{"code": "V1/2", "message": "w", "severity": "warning"}])
    assert error_of(warning_only) == ("V1/1", "Outer")
    assert error_of(httpx.Response(400, text="<html>Bad Request</html>")) == (None, "<html>Bad Request</html>")


@pytest.mark.parametrize(
    ("status", "kind", "applied"),
    [
        (404, Missing, False),
        (401, Unauthorised, False),
        (429, RateLimitedError, False),
        (503, OutageError, False),
        (500, RetryableError, False),
        (502, RetryableError, True),
        (504, RetryableError, True),
        (428, Refused, False),
    ],
)
def test_statuses_become_erpsync_errors(status: int, kind: type[Exception], applied: bool) -> None:
    mock = MockS4(lambda r: sap_error(status, "X/1", "nope") if r.method == "GET" else None)
    with pytest.raises(kind) as caught:
        mock.client().get(SO, "A_SalesOrder('1')")
    assert may_have_been_applied(caught.value) is applied


def test_a_429_is_retried_after_retry_after() -> None:
    answers = iter([httpx.Response(429, headers={"Retry-After": "0"}), answer(200, {"d": {"SalesOrder": "1"}})])
    mock = MockS4(lambda r: next(answers))
    assert mock.client().get(SO, "A_SalesOrder('1')").entity == {"SalesOrder": "1"}
    assert len(mock.requests) == 2


def test_a_refused_user_reads_the_secret_again_once() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        user = base64.b64decode(request.headers["Authorization"][6:]).decode()
        return answer(200, {"d": {}}) if user == "USER:new" else httpx.Response(401, text="Logon failed")

    mock = MockS4(handler)
    client = mock.client(credentials=lambda: ("USER", "new"))
    client.get(SO, "A_SalesOrder('1')")
    assert len(mock.requests) == 2 and client.password == "new"
    same = MockS4(handler).client(credentials=lambda: ("USER", "pw"))
    with pytest.raises(AuthError):
        same.get(SO, "A_SalesOrder('1')")


def test_sap_message_warnings_come_back_with_the_answer() -> None:
    header = json.dumps(
        {
            "code": "V1/084",
            "message": "Pricing error: mandatory condition PR00 is missing",
            "severity": "warning",
            "target": "",
            "details": [{"code": "V4/219", "message": "Sales document was not changed", "severity": "info"}],
        }
    )

    def handler(request: httpx.Request) -> httpx.Response | None:
        if request.method == "POST":
            response = created(request)
            response.headers["sap-message"] = header
            return response
        return None

    made = MockS4(handler).client().create(SO, "A_SalesOrder", recorded_deep_insert())
    assert [(w.code, w.severity) for w in made.warnings] == [("V1/084", "warning"), ("V4/219", "info")]
    assert made.warnings[0].message == "Pricing error: mandatory condition PR00 is missing"
    raw = MockS4(lambda r: answer(200, {"d": {}}, {"sap-message": "not json"})).client().get(SO, "A_SalesOrder('1')")
    assert [w.message for w in raw.warnings] == ["not json"]


def test_paging_follows_next_and_encodes_the_filter() -> None:
    pages = {
        None: {"d": {"results": [{"SalesOrder": "1"}], "__next": f"{BASE}/{SO}/A_SalesOrder?$skiptoken=1"}},
        "1": {"d": {"results": [{"SalesOrder": "2"}], "__next": "A_SalesOrder?$skiptoken=2"}},
        "2": {"d": {"results": [{"SalesOrder": "3"}]}},
    }
    mock = MockS4(lambda r: answer(200, pages[r.url.params.get("$skiptoken")]))
    rows = list(
        mock.client().rows(SO, "A_SalesOrder", filter="PurchaseOrderByCustomer eq '#10&01 O''B+'", expand=["to_Item"])
    )
    assert [r["SalesOrder"] for r in rows] == ["1", "2", "3"]
    first = mock.requests[0]
    assert first.url.params["$filter"] == "PurchaseOrderByCustomer eq '#10&01 O''B+'"
    assert "%2310%2601%20O''B%2B'" in str(first.url) and first.url.params["$expand"] == "to_Item"
    assert [str(r.url) for r in mock.requests[1:]] == [
        f"{BASE}/{SO}/A_SalesOrder?$skiptoken=1",
        f"{BASE}/{SO}/A_SalesOrder?$skiptoken=2",
    ]


def test_sap_client_rides_on_every_request() -> None:
    mock = MockS4(lambda r: answer(204) if r.method == "PATCH" else None)
    mock.client(sap_client="100").update(SO, "A_SalesOrder('1')", {"X": "1"}, etag=ETAG)
    assert all(r.url.params["sap-client"] == "100" for r in mock.requests)


def test_function_imports_send_their_parameters_as_literals_with_if_match() -> None:
    def handler(request: httpx.Request) -> httpx.Response | None:
        if request.method == "POST":
            return answer(200, {"d": {"results": [{"DeliveryDocument": "80000000"}]}}, {"ETag": "W/\"'0003'\""})
        return None

    mock = MockS4(handler)
    done = mock.client().call(DELIVERY, "PostGoodsIssue", {"DeliveryDocument": "80000000"}, etag="W/\"'0002'\"")
    post = mock.sent("POST")[0]
    assert post.url.params["DeliveryDocument"] == "'80000000'" and post.headers["If-Match"] == "W/\"'0002'\""
    assert done.entity == {"results": [{"DeliveryDocument": "80000000"}]} and done.etag == "W/\"'0003'\""


def test_a_timeout_on_a_write_may_have_been_applied_and_no_connection_is_an_outage() -> None:
    def timeout(request: httpx.Request) -> httpx.Response | None:
        if request.method == "POST":
            raise httpx.ReadTimeout("no answer", request=request)
        return None

    with pytest.raises(RetryableError) as lost:
        MockS4(timeout).client().create(SO, "A_SalesOrder", {})
    assert may_have_been_applied(lost.value)

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(OutageError):
        MockS4(down).client().get(SO, "A_SalesOrder('1')")


def test_an_answer_that_is_not_odata_is_retryable_not_a_crash() -> None:
    mock = MockS4(lambda r: answer(200, {"value": []}))
    with pytest.raises(RetryableError):
        list(mock.client().rows(SO, "A_SalesOrder"))


def test_keys_are_literals() -> None:
    assert S4Client.key("A_SalesOrder", "4000043") == "A_SalesOrder('4000043')"
    assert (
        S4Client.key("A_SalesOrderItem", SalesOrder="1", SalesOrderItem="10")
        == "A_SalesOrderItem(SalesOrder='1',SalesOrderItem='10')"
    )
    assert S4Client.key("A_X", "O'B") == "A_X('O''B')"
