"""The console's operator API client signs every request with SigV4 (execute-api, the API's region,
the caller's credentials, the body in the signature) and calls the operator endpoints; no AWS."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from cli.console_app.data import StackOps
from cli.console_app.operator_client import OperatorClient, OperatorError

API = "https://abc123.execute-api.eu-west-1.amazonaws.com/Prod"
CREDS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "SESSIONTOKEN")


def signature_of(req: httpx.Request, body: bytes) -> str:
    """The signature botocore computes for this method, URL, headers and ``body`` at the request's time."""
    headers = {
        k: v for k, v in req.headers.items() if k.lower() in ("content-type", "x-amz-date", "x-amz-security-token")
    }
    aws = AWSRequest(method=req.method, url=str(req.url), data=body, headers=headers)
    aws.context["timestamp"] = req.headers["x-amz-date"]
    auth = SigV4Auth(CREDS, "execute-api", "eu-west-1")
    return str(auth.signature(auth.string_to_sign(aws, auth.canonical_request(aws)), aws))


def test_a_request_is_signed_for_execute_api_in_the_apis_region_with_its_body() -> None:
    client = OperatorClient(API, credentials=CREDS)
    req = client.signed("POST", "skip/orders", {"ids": ["orders#magento#7"], "note": "dealt with"})
    auth = req.headers["authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/execute-api/aws4_request" in auth
    assert "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token" in auth
    assert req.headers["x-amz-security-token"] == "SESSIONTOKEN" and req.headers["x-amz-date"]
    assert str(req.url) == f"{API}/operator/skip/orders"
    sent = auth.rsplit("Signature=", 1)[1]
    assert sent == signature_of(req, req.content)
    assert sent != signature_of(req, req.content.replace(b"dealt with", b"dealt with!"))


def test_query_values_are_signed_in_canonical_form() -> None:
    req = OperatorClient(API, credentials=CREDS).signed(
        "GET", "failed/orders", query={"since": "2024-01-01T00:00:00+00:00", "error_type": None}
    )
    assert str(req.url).endswith("/operator/failed/orders?since=2024-01-01T00%3A00%3A00%2B00%3A00")
    assert req.headers["authorization"].rsplit("Signature=", 1)[1] == signature_of(req, b"")


def test_stack_ops_call_the_operator_endpoints_and_follow_more() -> None:
    seen: list[tuple[str, str, Any]] = []
    answers = iter([{"counts": {"synced": 1}, "more": True}, {"counts": {"synced": 1, "failed": 1}, "more": False}])

    def api(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"].startswith("AWS4-HMAC-SHA256 ")
        body = json.loads(request.content) if request.content else None
        seen.append((request.method, request.url.path, body))
        if request.url.path.endswith("/failed/orders"):
            row = {"flow": "orders", "source": "magento", "id": "7", "error_type": "unknown_item", "reason": "no item"}
            return httpx.Response(200, json={"failed": [row], "count": 1})
        if "/resync/" in request.url.path:
            return httpx.Response(200, json=next(answers))
        if "/skip/" in request.url.path:
            return httpx.Response(200, json={"skipped": 1})
        return httpx.Response(403, json={"message": "User: arn:aws:iam::1:user/x is not authorized"})

    ops = StackOps("prod", OperatorClient(API, credentials=CREDS, transport=httpx.MockTransport(api)))
    [failure] = ops.failed("orders")
    assert failure.key == "orders#magento#7" and failure.reason == "no item"
    assert ops.retry("orders", ["orders#magento#7", "orders#magento#8"]) == {"synced": 2, "failed": 1}
    assert ops.skip("orders", ["orders#magento#7"], "dealt with") == 1
    with pytest.raises(OperatorError, match=r"403 .*execute-api:Invoke"):
        ops.redrive("orders")
    assert [(m, p.removeprefix("/Prod")) for m, p, _ in seen] == [
        ("GET", "/operator/failed/orders"),
        ("POST", "/operator/resync/orders"),
        ("POST", "/operator/resync/orders"),
        ("POST", "/operator/skip/orders"),
        ("POST", "/operator/redrive/orders"),
    ]
    assert seen[1][2] == {"failed": True, "ids": ["orders#magento#7", "orders#magento#8"]}
    assert seen[3][2] == {"ids": ["orders#magento#7"], "note": "dealt with"}


def test_console_with_a_stack_listens_on_loopback_and_acts_through_the_stacks_api(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import uvicorn
    from typer.testing import CliRunner

    from cli import console
    from cli.main import app

    served: dict[str, Any] = {}

    def run(server: uvicorn.Server, sockets: list[Any]) -> None:
        served["app"], served["address"] = server.config.app, sockets[0].getsockname()

    monkeypatch.setattr(console.target, "choose", lambda stack: {"stack": stack, "outputs": {"ApiUrl": API}})
    monkeypatch.setattr(uvicorn.Server, "run", run)
    res = CliRunner().invoke(app, ["console", "--stack", "prod", "--port", "0"])
    assert res.exit_code == 0, res.output
    ops = served["app"].state.ops
    assert isinstance(ops, StackOps) and ops.where == "stack prod"
    assert ops.client.api_url == API and ops.client.region == "eu-west-1"
    assert served["address"][0] == "127.0.0.1" and f":{served['address'][1]}/" in res.output
