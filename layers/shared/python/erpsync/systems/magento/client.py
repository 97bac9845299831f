"""A small synchronous Magento 2 REST client: admin token, searchCriteria paging, typed errors."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import httpx

from erpsync.errors import (
    AuthError,
    NotFoundError,
    OutageError,
    PermanentError,
    RateLimitedError,
    RetryableError,
    ValidationFailed,
)
from erpsync.systems import http as transport
from erpsync.systems.ports import Deadline, Gate

SYSTEM = "magento"


class Filter(NamedTuple):
    """One searchCriteria filter; ``condition_type`` is Magento's (eq, gt, in, like, ...)."""

    field: str
    value: Any
    condition_type: str = "eq"


FilterGroups = Sequence[Filter | Sequence[Filter]]
"""Each element is a filter group (a lone Filter is a group of one); groups AND, filters in one group OR."""


def search_params(
    filters: FilterGroups = (),
    sort: Sequence[tuple[str, str]] = (),
    page_size: int | None = None,
    current_page: int | None = None,
) -> dict[str, str]:
    """The ``searchCriteria[...]`` query parameters for a search."""
    params: dict[str, str] = {}
    for g, group in enumerate(filters):
        members = [group] if isinstance(group, Filter) else list(group)
        for f, flt in enumerate(members):
            key = f"searchCriteria[filter_groups][{g}][filters][{f}]"
            value = ",".join(str(v) for v in flt.value) if isinstance(flt.value, list | tuple) else flt.value
            params[f"{key}[field]"] = flt.field
            params[f"{key}[value]"] = "" if value is None else str(value)
            params[f"{key}[condition_type]"] = flt.condition_type
    for s, (fld, direction) in enumerate(sort):
        params[f"searchCriteria[sortOrders][{s}][field]"] = fld
        params[f"searchCriteria[sortOrders][{s}][direction]"] = direction.upper()
    if page_size is not None:
        params["searchCriteria[pageSize]"] = str(page_size)
    if current_page is not None:
        params["searchCriteria[currentPage]"] = str(current_page)
    if not params:
        params["searchCriteria"] = ""
    return params


def render_message(body: Any, fallback: str) -> str:
    """Magento's error message with its ``%1`` / ``%name`` parameters substituted."""
    if not isinstance(body, Mapping) or not isinstance(body.get("message"), str):
        return fallback
    message: str = body["message"]
    params = body.get("parameters")
    if isinstance(params, Mapping):
        for key in sorted(params, key=lambda k: len(str(k)), reverse=True):
            message = message.replace(f"%{key}", str(params[key]))
    elif isinstance(params, list):
        for i in range(len(params), 0, -1):
            message = message.replace(f"%{i}", str(params[i - 1]))
        # the price APIs name their placeholders but send the values as a list, in the order the
        # names first appear ("Row ID: SKU = %SKU, Store ID: %storeId." with ["MT01", "0"])
        names = list(dict.fromkeys(re.findall(r"%([A-Za-z_]\w*)", message)))
        if names and len(names) <= len(params):
            message = re.sub(r"%([A-Za-z_]\w*)", lambda m: str(params[names.index(m.group(1))]), message)
    errors = body.get("errors")  # a ValidationException (MSI): "Validation Failed" and one entry per problem
    if isinstance(errors, list) and errors:
        shown = [render_message(e, str(e)) for e in errors[:5]]
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        message = f"{message}: {'; '.join(shown)}{more}"
    return message


def _position(point: tuple[str, Any]) -> tuple[str, int, str]:
    """A (time, id) keyset position, comparable (numeric ids as numbers)."""
    text = str(point[1])
    return (point[0], int(text) if text.isdigit() else -1, text)


class MagentoClient:
    """Talks to ``<base_url>/V1/...`` with an admin token fetched lazily and renewed once on 401.

    ``base_url`` is like ``http://127.0.0.1:8001/rest/default``. ``http`` may be any ``httpx.Client``
    (e.g. Starlette's TestClient); paths are then joined onto ``base_url`` as given, so a relative
    ``base_url`` such as ``/rest/default`` uses that client's own base.
    """

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        http: httpx.Client | None = None,
        timeout: float = 10.0,
        gate: Gate | None = None,
        deadline: Deadline | None = None,
        name: str = SYSTEM,
        credentials: Callable[[], tuple[str, str]] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.deadline = deadline
        self.credentials = credentials
        """(username, password) as the secret holds them now, read again when they are refused."""
        self.name = name
        """The connection this client serves: named in its errors, so breakers and gates are per connection."""
        self.username = username
        self.password = password
        self.timeout = timeout
        self.http = http if http is not None else transport.new_client(timeout)
        self.request_count = 0
        self.gate = gate
        self._token: str | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        self.http.close()

    # ----------------------------------------------------------------- plumbing

    def scoped(self, scope: str | None) -> str:
        """The base URL for store scope ``scope`` (``all``: global values; a store view code:
        that view's values), or ``base_url`` itself for None."""
        if not scope:
            return self.base_url
        head, _, tail = self.base_url.rpartition("/")
        if tail == "rest":
            return f"{self.base_url}/{scope}"
        if head.endswith("/rest") or head == "/rest":
            return f"{head}/{scope}"
        return self.base_url

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None,
        json: Any,
        token: str | None,
        scope: str | None = None,
    ) -> httpx.Response:
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        url = f"{self.scoped(scope)}{path}"
        with self._lock:
            self.request_count += 1
        return transport.send(
            self.http,
            method,
            url,
            system=self.name,
            timeout=self.deadline.timeout(self.timeout, self.name, method) if self.deadline else self.timeout,
            gate=self.gate,
            deadline=self.deadline,
            params=params,
            json=json,
            headers=headers,
        )

    def token(self, *, renew: bool = False) -> str:
        """The admin token, fetched on first use (or again when ``renew``)."""
        if self._token and not renew:
            return self._token
        response = self._send(
            "POST",
            "/V1/integration/admin/token",
            params=None,
            json={"username": self.username, "password": self.password},
            token=None,
        )
        if response.status_code in (401, 403):
            fresh = self.credentials() if self.credentials is not None else None
            if fresh is not None and fresh != (self.username, self.password):
                self.username, self.password = fresh  # the secret changed: once more with it
                return self.token(renew=True)
            raise AuthError(f"magento refused the admin credentials: {self._message(response)}", system=self.name)
        data = self._decode(response, "POST", "/V1/integration/admin/token")
        if not isinstance(data, str) or not data:
            raise RetryableError("magento returned no token", system=self.name)
        self._token = data
        return data

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        scope: str | None = None,
    ) -> Any:
        """One API call; the decoded JSON. Errors are raised as erpsync's typed errors. ``scope``:
        the store scope of the call (``all`` for global values), else the one ``base_url`` names."""
        response = self._send(method, path, params=params, json=json, token=self.token(), scope=scope)
        if response.status_code == 401:
            response = self._send(method, path, params=params, json=json, token=self.token(renew=True), scope=scope)
            if response.status_code == 401:
                raise AuthError(f"magento: {self._message(response)}", system=self.name)
        return self._decode(response, method, path)

    @staticmethod
    def _message(response: httpx.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            body = None
        return render_message(body, response.text[:200] or response.reason_phrase)

    def _decode(self, response: httpx.Response, method: str, path: str) -> Any:
        status = response.status_code
        if status < 300:
            try:
                return response.json()
            except ValueError as exc:
                raise RetryableError(f"magento sent a non-JSON answer to {method} {path}", system=self.name) from exc
        message = self._message(response)
        where = f"{method} {path}"
        if status == 429:
            raise RateLimitedError(
                f"magento rate limited {where}: {message}",
                system=self.name,
                retry_after=transport.retry_after(response),
                status=status,
            )
        if status == 503:
            raise OutageError(f"magento unavailable ({status}) on {where}: {message}", system=self.name, status=status)
        if status >= 500:
            raise RetryableError(f"magento error {status} on {where}: {message}", system=self.name, status=status)
        if status == 404:
            raise NotFoundError(message, system=self.name)
        if status == 400:
            raise ValidationFailed(message, system=self.name)
        if status in (401, 403):
            raise AuthError(f"magento {status} on {where}: {message}", system=self.name)
        raise PermanentError(f"magento {status} on {where}: {message}", system=self.name)

    # ----------------------------------------------------------------- verbs

    def get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any, *, scope: str | None = None) -> Any:
        return self.request("POST", path, json=body, scope=scope)

    def put(self, path: str, body: Any, *, scope: str | None = None) -> Any:
        return self.request("PUT", path, json=body, scope=scope)

    def search_page(
        self,
        path: str,
        filters: FilterGroups = (),
        sort: Sequence[tuple[str, str]] = (),
        page_size: int = 100,
        current_page: int = 1,
    ) -> dict[str, Any]:
        """One page of a search: Magento's ``{"items", "search_criteria", "total_count"}``."""
        data = self.get(path, search_params(filters, sort, page_size, current_page))
        if not isinstance(data, dict) or not isinstance(data.get("items", []), list):
            raise RetryableError(f"magento sent an unexpected search result for {path}", system=self.name)
        return data

    def changed_pages(
        self,
        path: str,
        since: str,
        filters: FilterGroups = (),
        *,
        page_size: int = 100,
        time_field: str = "updated_at",
        id_field: str = "entity_id",
        row_id: str | None = None,
    ) -> Iterator[tuple[list[dict[str, Any]], str | None]]:
        """Every row with ``time_field`` after ``since`` (and matching ``filters``), oldest first, read
        by keyset: every request asks for page 1, sorted by ``time_field`` then ``id_field``, of the
        rows after the last row read, (T, I): ``time_field gt T``, or ``time_field`` T and
        ``id_field gt I``, sent as the groups ``[time_field gt T OR id_field gt I]`` AND
        ``[time_field gteq T]`` (Magento ORs the filters of a group and ANDs the groups). Unlike
        ``currentPage`` offsets, a record updated during the read (it moves to the end) shifts no
        other record, so none is skipped, and nothing is kept from page to page.

        Yields ``(rows, done)``: ``done`` is the newest ``time_field`` value up to which every row
        has been yielded. While more rows of the last row's time may follow, it is the time before
        that one in the page (None when the page holds only that time); after the last page, the
        last row's time. ``row_id`` names the id in the rows when it differs from ``id_field``
        (customers: ``id``).
        """
        sort = [(time_field, "ASC"), (id_field, "ASC")]
        row_id = row_id or id_field
        last: tuple[str, Any] | None = None
        while True:
            if last is None:
                keyset: list[Filter | list[Filter]] = [Filter(time_field, since, "gt")]
            else:
                keyset = [
                    [Filter(time_field, last[0], "gt"), Filter(id_field, last[1], "gt")],
                    Filter(time_field, last[0], "gteq"),
                ]
            data = self.search_page(path, [*keyset, *filters], sort, page_size, 1)
            rows: list[dict[str, Any]] = data.get("items") or []
            if not rows:
                if last is not None:
                    yield [], last[0]  # the last page was full and nothing followed it
                return
            at, key = rows[-1].get(time_field), rows[-1].get(row_id)
            if at in (None, "") or key in (None, ""):
                raise RetryableError(f"magento sent a {path} row without {time_field} or {row_id}", system=self.name)
            first = (str(rows[0].get(time_field) or ""), rows[0].get(row_id))
            if last is not None and _position(first) <= _position(last):
                raise RetryableError(f"magento did not page {path} past {last}", system=self.name)
            total = data.get("total_count")
            more = len(rows) >= page_size and (total is None or int(total) > len(rows))
            if not more:
                yield rows, str(at)
                return
            times = (str(t) for t in (r.get(time_field) for r in reversed(rows)) if t not in (None, ""))
            yield rows, next((t for t in times if t != str(at)), None)
            last = (str(at), key)

    def search(
        self,
        path: str,
        filters: FilterGroups = (),
        sort: Sequence[tuple[str, str]] = (),
        page_size: int = 100,
    ) -> list[dict[str, Any]]:
        """Every item of a search, page by page until ``total_count`` (Magento repeats the last page)."""
        items: list[dict[str, Any]] = []
        page = 1
        while True:
            data = self.search_page(path, filters, sort, page_size, page)
            batch = data.get("items") or []
            items.extend(batch)
            total = int(data.get("total_count") or 0)
            if not batch or len(items) >= total or page * page_size >= total:
                return items
            page += 1
