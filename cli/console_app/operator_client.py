"""A small client of a deployed stack's operator API (IAM auth): every request signed with SigV4 as
the operator, with the operator's own AWS credentials (``execute-api``)."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote, urlencode

import httpx


class OperatorError(RuntimeError):
    """The operator API refused or failed a request; one line."""


class OperatorClient:
    """``GET /operator/failed/{flow}``, ``POST /operator/resync|skip|redrive/{flow}`` (see
    ``erpsync.runtime.operator_api``)."""

    def __init__(
        self,
        api_url: str,
        region: str | None = None,
        credentials: Any = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        found = re.search(r"execute-api\.([a-z0-9-]+)\.", self.api_url)
        self.region = region or (found.group(1) if found else "us-east-1")
        self._credentials = credentials
        self.http = httpx.Client(timeout=60.0, transport=transport)

    def credentials(self) -> Any:
        """Frozen credentials for one request (None given: the default chain, refreshed as needed)."""
        if self._credentials is None:
            import boto3

            self._credentials = boto3.Session().get_credentials()
            if self._credentials is None:
                raise OperatorError("no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID")
        getter = getattr(self._credentials, "get_frozen_credentials", None)
        return getter() if getter else self._credentials

    def signed(self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None) -> httpx.Request:
        """The request, signed (query values in canonical form: what API Gateway checks)."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        url = f"{self.api_url}/operator/{path}"
        pairs = sorted((k, str(v)) for k, v in (query or {}).items() if v not in (None, ""))
        if pairs:
            url += "?" + urlencode(pairs, quote_via=quote, safe="-_.~")
        data = json.dumps(body).encode() if body is not None else b""
        headers = {"Content-Type": "application/json"} if body is not None else {}
        aws = AWSRequest(method=method, url=url, data=data, headers=headers)
        SigV4Auth(self.credentials(), "execute-api", self.region).add_auth(aws)
        return self.http.build_request(method, url, content=data or None, headers=dict(aws.headers.items()))

    def call(self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            res = self.http.send(self.signed(method, path, body, query))
        except httpx.HTTPError as exc:
            raise OperatorError(f"operator API {method} {path}: {type(exc).__name__}: {exc}") from exc
        try:
            data = res.json()
        except ValueError:
            data = {"message": res.text[:200]}
        if res.status_code == 403:
            raise OperatorError(
                f"operator API {method} {path}: 403 {data.get('message', '')} "
                "(your AWS identity needs execute-api:Invoke on the stack's operator API)"
            )
        if res.status_code >= 400:
            raise OperatorError(f"operator API {method} {path}: {res.status_code} {data.get('message', '')}")
        return dict(data)

    def failed(self, flow: str, error_type: str | None = None, since: str | None = None) -> list[dict[str, Any]]:
        return list(self.call("GET", f"failed/{flow}", query={"error_type": error_type, "since": since})["failed"])

    def retry(self, flow: str, ids: list[str]) -> dict[str, int]:
        """Retry the open failures ``ids`` of ``flow``, ten a call (the API answers within 29 s and
        says ``more`` when it stopped for time: that call is made again, at most twice)."""
        counts: dict[str, int] = {}
        for start in range(0, len(ids), 10):
            for _ in range(3):
                res = self.call("POST", f"resync/{flow}", {"failed": True, "ids": ids[start : start + 10]})
                for k, n in res.get("counts", {}).items():
                    counts[k] = counts.get(k, 0) + int(n)
                if not res.get("more"):
                    break
        return counts

    def skip(self, flow: str, ids: list[str], note: str) -> int:
        return int(self.call("POST", f"skip/{flow}", {"ids": ids, "note": note})["skipped"])

    def redrive(self, flow: str) -> int:
        return int(self.call("POST", f"redrive/{flow}", {})["moved"])
