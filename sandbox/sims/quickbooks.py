"""A QuickBooks Online Accounting API v3 simulator (minorversion 75), JSON as Intuit sends it.

- ``/v3/company/<realm>/<entity>``: create (``POST``), read (``GET .../<id>``), sparse or full
  update (``POST`` with ``Id`` and the current ``SyncToken``; a stale one is fault 5010), void and
  delete (``?operation=void|delete``) of Customer, Item, Invoice, SalesReceipt, Estimate, Payment,
  CreditMemo, RefundReceipt. ``?requestid=<id>`` replays the first answer to that id (Intuit's
  idempotency), so a retry after a lost answer makes nothing twice.
- ``/query?query=select * from <Entity> where <field> <op> '<value>' [and ...] [startposition n]
  [maxresults m]`` (``=``, ``<``, ``>``, ``<=``, ``>=``, ``in (...)``, ``like '%x%'``; dotted
  fields such as ``MetaData.LastUpdatedTime``); ``/cdc?entities=..&changedSince=..`` (one
  QueryResponse per entity, ``{}`` when none changed, active records then deleted ones as
  ``{"Id", "status": "Deleted", "domain", "MetaData": {"LastUpdatedTime"}}``, 1,000 objects at most);
  ``/batch`` (items run in order, each answered with its entity or its Fault, HTTP 200).
- Faults as Intuit sends them: ``{"Fault": {"Error": [{"Message", "Detail", "code", "element"}],
  "type": "ValidationFault"}, "time"}``: 6240 duplicate name (across customers, vendors and
  employees), 610 object not found, 5010 stale SyncToken, 2020 required field, 6070 line amount
  not quantity times unit price (code UNVERIFIED), 3200 authentication, 3001 throttle (429).
- Ceilings per realm: 500 requests a minute and 10 a second (429 ``ThrottleExceeded``;
  ``/_sim/seed {"limits": {"per_minute", "per_second"}}`` changes them).
- OAuth 2.0: ``POST /oauth2/v1/tokens/bearer`` (``grant_type=refresh_token``, Basic client auth)
  rotates the refresh token; the one before dies once the new one is used.
- Webhooks: ``POST /_sim/webhooks {"url", "format": "cloudevents"|"legacy"}`` registers an
  endpoint (as the developer portal does); every change is sent there signed
  (``intuit-signature``: base64 HMAC-SHA256 of the raw body with the app's verifier token).
- Totals: lines (``SalesItemLineDetail`` Amount = Qty x UnitPrice), less a ``DiscountLineDetail``
  line, plus ``TxnTaxDetail.TotalTax`` when given (as automated sales tax honours an explicit
  total); an invoice's ``Balance`` falls as payments link it, and its ``LinkedTxn`` names them.
- Estimates: ``TxnStatus`` ``Pending`` when made (one of Finance.xsd's ``QboEstimateStatusEnum``:
  Accepted, Closed, Pending, Rejected; another value is fault 2010); an invoice created with
  ``LinkedTxn [{"TxnType": "Estimate", "TxnId"}]`` closes a Pending or Accepted one (``TxnStatus``
  ``Closed``, its own ``LinkedTxn`` naming the invoice: QuickBooks' behaviour, UNVERIFIED in the
  reference beyond the XSD's note that closed and rejected estimates are ignored, as they are here).
- Refunds: a credit memo keeps ``RemainingCredit`` (its total when made); a refund receipt has
  ``Balance`` 0 and needs ``DepositToAccountRef``, an account that exists (Intuit's reference lists
  it as required: UNVERIFIED in the XSD, which requires nothing).
- Items and stock (item rules, ``InventoryAdjustment``, sales taking ``QtyOnHand``, queries of
  ``Item`` answering active items unless they name ``Active``): sandbox/sims/quickbooks_catalog.py.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
import uuid
from collections import deque
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qs

import httpx
from starlette.applications import Starlette
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.sims.control import SimControl

JSON = dict[str, Any]
CENT = Decimal("0.01")
REALM = "9341453050131711"
ACCESS_TOKEN = "qbo_sim_access_token"
CLIENT_ID = "qbo-sim-client"
CLIENT_SECRET = "qbo-sim-secret"
VERIFIER_TOKEN = "qbo-sim-verifier-token"
ENTITIES = {
    "customer": "Customer",
    "item": "Item",
    "invoice": "Invoice",
    "salesreceipt": "SalesReceipt",
    "estimate": "Estimate",
    "payment": "Payment",
    "creditmemo": "CreditMemo",
    "refundreceipt": "RefundReceipt",
    "account": "Account",
    "taxcode": "TaxCode",
    "inventoryadjustment": "InventoryAdjustment",
}
TRANSACTIONS = {"Invoice", "SalesReceipt", "Estimate", "CreditMemo", "RefundReceipt"}
ESTIMATE_STATUSES = ("Accepted", "Closed", "Pending", "Rejected")
"""Finance.xsd ``QboEstimateStatusEnum``: an estimate's ``TxnStatus`` in QuickBooks Online."""
OPEN_ESTIMATES = ("Pending", "Accepted")
"""Finance.xsd, ``LinkedTxn.TxnId``: "Only Pending and Accepted Estimates can be specified. Closed
and Rejected estimates will be ignored"."""
VOIDABLE = {"Invoice", "SalesReceipt", "Payment", "CreditMemo", "RefundReceipt"}
PER_MINUTE, PER_SECOND = 500, 10
CDC_MAX = 1000


class Fault(Exception):
    def __init__(
        self, status: int, code: str, message: str, detail: str = "", element: str = "", kind: str = "ValidationFault"
    ):
        super().__init__(message)
        self.status, self.code, self.message, self.detail, self.element, self.kind = (
            status,
            code,
            message,
            detail,
            element,
            kind,
        )

    def body(self) -> JSON:
        error: JSON = {"Message": self.message, "Detail": self.detail or self.message, "code": self.code}
        if self.element:
            error["element"] = self.element
        return {"Fault": {"Error": [error], "type": self.kind}, "time": _stamp()}


def _stamp(when: datetime | None = None) -> str:
    return (when or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _dec(value: Any, element: str) -> Decimal:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise Fault(400, "2080", "Number Format Error", f"{element} is not a number: {value!r}", element) from exc


def _money(value: Decimal) -> float:
    return float(value.quantize(CENT, ROUND_HALF_UP))


class Company:
    """One realm's books."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.records: dict[str, dict[str, JSON]] = {name: {} for name in ENTITIES.values()}
        self.deleted: dict[str, dict[str, JSON]] = {name: {} for name in ENTITIES.values()}
        self.next_id = 100
        self.doc_number = 1000
        self.replies: dict[str, tuple[int, JSON]] = {}
        self.events: list[tuple[str, str, str]] = []
        self.on_change: Any = None
        from sandbox.sims.quickbooks_catalog import Stock

        self.stock = Stock(self)
        """Item rules, inventory adjustments, sales on the shelf (sandbox/sims/quickbooks_catalog.py)."""
        self._seed_defaults()

    def _seed_defaults(self) -> None:
        for name, kind in (
            ("Undeposited Funds", "Other Current Asset"),
            ("Sales of Product Income", "Income"),
            ("Discounts given", "Income"),
        ):
            self._put("Account", {"Name": name, "AccountType": kind, "Active": True})
        self._put("Item", {"Name": "Shipping", "Type": "Service", "Active": True, "IncomeAccountRef": {"value": "102"}})
        for code in ("TAX", "NON"):
            self._put("TaxCode", {"Name": code, "Active": True, "Taxable": code == "TAX"})

    def new_id(self) -> str:
        self.next_id += 1
        return str(self.next_id)

    def _put(self, entity: str, record: JSON) -> JSON:
        now = _stamp()
        record = dict(record, Id=record.get("Id") or self.new_id(), SyncToken="0", domain="QBO", sparse=False)
        record["MetaData"] = {"CreateTime": now, "LastUpdatedTime": now}
        self.records[entity][record["Id"]] = record
        return record

    def changed(self, entity: str, record: JSON, operation: str) -> None:
        self.events.append((entity, record["Id"], operation))
        if self.on_change is not None:
            self.on_change(entity, record["Id"], operation, record["MetaData"]["LastUpdatedTime"])
        self.stock.changed(entity, record, operation)

    # ------------------------------------------------------------------ writes

    def create(self, entity: str, body: JSON) -> JSON:
        record = copy.deepcopy(body)
        for key in ("Id", "SyncToken", "MetaData"):
            record.pop(key, None)
        self.check(entity, record)
        self.stock.check(entity, record, None)
        if entity in TRANSACTIONS:
            self.doc_number += 1
            record.setdefault("DocNumber", str(self.doc_number))
            record.setdefault("TxnDate", datetime.now(UTC).date().isoformat())
            self.price(entity, record)
        if entity == "Estimate":
            record.setdefault("TxnStatus", "Pending")
        closed: list[JSON] = []
        if entity == "Invoice":
            record["Id"] = self.new_id()
            closed = self.close_estimates(record)
        if entity == "Payment":
            record["Id"] = self.new_id()
            self.apply_payment(record)
        made = self._put(entity, record)
        self.changed(entity, made, "Create")
        for estimate in closed:
            self.changed("Estimate", estimate, "Update")
        return made

    def close_estimates(self, invoice: JSON) -> list[JSON]:
        """Close the Pending or Accepted estimates the new ``invoice`` links (the others' links are
        dropped, as QuickBooks ignores them); the estimates closed."""
        links = [t for t in invoice.get("LinkedTxn") or [] if t.get("TxnType") == "Estimate"]
        estimates = []
        for link in links:
            estimate = self.records["Estimate"].get(str(link.get("TxnId")))
            if estimate is None:
                raise Fault(
                    400,
                    "610",
                    "Object Not Found",
                    f"Something you're trying to use has been made inactive or deleted: Estimate {link.get('TxnId')}",
                    "LinkedTxn",
                )
            estimates.append(estimate)
        kept = [t for t in invoice.get("LinkedTxn") or [] if t.get("TxnType") != "Estimate"]
        closed = []
        for estimate in estimates:
            if estimate.get("TxnStatus", "Pending") not in OPEN_ESTIMATES:
                continue
            kept.append({"TxnId": estimate["Id"], "TxnType": "Estimate"})
            estimate["TxnStatus"] = "Closed"
            estimate.setdefault("LinkedTxn", []).append({"TxnId": invoice["Id"], "TxnType": "Invoice"})
            estimate["SyncToken"] = str(int(estimate["SyncToken"]) + 1)
            estimate["MetaData"]["LastUpdatedTime"] = _stamp()
            closed.append(estimate)
        if kept:
            invoice["LinkedTxn"] = kept
        else:
            invoice.pop("LinkedTxn", None)
        return closed

    def update(self, entity: str, body: JSON) -> JSON:
        current = self.records[entity].get(str(body.get("Id")))
        if current is None:
            raise Fault(
                400,
                "610",
                "Object Not Found",
                f"Something you're trying to use has been made inactive or deleted: {entity} {body.get('Id')}",
            )
        if str(body.get("SyncToken")) != current["SyncToken"]:
            raise Fault(
                400,
                "5010",
                "Stale Object Error",
                f"You and {entity} were working on this at the same time. "
                f"SyncToken {body.get('SyncToken')} is not {current['SyncToken']}",
            )
        if body.get("sparse"):
            record = {**current, **{k: v for k, v in body.items() if k not in ("MetaData",)}}
        else:
            record = {k: v for k, v in body.items() if k != "MetaData"}
            record["MetaData"] = current["MetaData"]
        self.check(entity, record, updating=current)
        self.stock.check(entity, record, current)
        if entity in TRANSACTIONS:
            self.price(entity, record)
        record["SyncToken"] = str(int(current["SyncToken"]) + 1)
        record["sparse"] = False
        record["MetaData"] = {**current["MetaData"], "LastUpdatedTime": _stamp()}
        self.records[entity][record["Id"]] = record
        self.changed(entity, record, "Update")
        return record

    def void(self, entity: str, body: JSON) -> JSON:
        if entity not in VOIDABLE:
            raise Fault(400, "2010", "Request has invalid or unsupported property", f"{entity} cannot be voided")
        current = self.records[entity].get(str(body.get("Id")))
        if current is None:
            raise Fault(400, "610", "Object Not Found", f"{entity} {body.get('Id')} does not exist")
        if str(body.get("SyncToken")) != current["SyncToken"]:
            raise Fault(
                400, "5010", "Stale Object Error", f"SyncToken {body.get('SyncToken')} is not {current['SyncToken']}"
            )
        if entity == "Payment":
            self.unapply_payment(current)
        for line in current.get("Line") or []:
            line["Amount"] = 0
        current["TotalAmt"] = 0
        current["Balance"] = 0
        if "RemainingCredit" in current:
            current["RemainingCredit"] = 0
        note = "Voided"
        current["PrivateNote"] = f"{note} {current.get('PrivateNote') or ''}".strip()
        current["SyncToken"] = str(int(current["SyncToken"]) + 1)
        current["MetaData"]["LastUpdatedTime"] = _stamp()
        self.changed(entity, current, "Void")
        return current

    def delete(self, entity: str, body: JSON) -> JSON:
        self.stock.may_delete(entity)
        current = self.records[entity].pop(str(body.get("Id")), None)
        if current is None:
            raise Fault(400, "610", "Object Not Found", f"{entity} {body.get('Id')} does not exist")
        if entity == "Payment":
            self.unapply_payment(current)
        gone = {"Id": current["Id"], "status": "Deleted", "domain": "QBO", "MetaData": {"LastUpdatedTime": _stamp()}}
        self.deleted[entity][current["Id"]] = gone
        self.changed(entity, gone, "Delete")
        return {"domain": "QBO", "status": "Deleted", "Id": current["Id"]}

    # ------------------------------------------------------------------ rules

    def check(self, entity: str, record: JSON, updating: JSON | None = None) -> None:
        if entity == "Customer":
            name = str(
                record.get("DisplayName")
                or " ".join(x for x in (record.get("GivenName"), record.get("FamilyName")) if x)
            ).strip()
            if not name:
                raise Fault(
                    400,
                    "2020",
                    "Required param missing, need to supply the required value for the API",
                    "Required parameter DisplayName is missing",
                    "DisplayName",
                )
            record["DisplayName"] = name
            clash = next(
                (
                    c
                    for c in self.records["Customer"].values()
                    if c["DisplayName"].lower() == name.lower() and (updating is None or c["Id"] != updating["Id"])
                ),
                None,
            )
            if clash is not None:
                raise Fault(
                    400,
                    "6240",
                    "Duplicate Name Exists Error",
                    "The name supplied already exists. : Another customer, vendor or employee is already "
                    f"using this name. Please use a different name. Id={clash['Id']}",
                )
            record.setdefault("Active", True)
            record.setdefault("FullyQualifiedName", name)
            record.setdefault("Balance", 0)
        elif entity == "Item":
            name = str(record.get("Name") or "").strip()
            if not name:
                raise Fault(
                    400,
                    "2020",
                    "Required param missing, need to supply the required value for the API",
                    "Required parameter Name is missing",
                    "Name",
                )
            if any(
                i["Name"].lower() == name.lower() and (updating is None or i["Id"] != updating["Id"])
                for i in self.records["Item"].values()
            ):
                raise Fault(400, "6240", "Duplicate Name Exists Error", "The name supplied already exists.")
            record.setdefault("Active", True)
            record.setdefault("Type", "NonInventory")
        elif entity in TRANSACTIONS or entity == "Payment":
            ref = (record.get("CustomerRef") or {}).get("value")
            if not ref:
                raise Fault(
                    400,
                    "2020",
                    "Required param missing, need to supply the required value for the API",
                    "Required parameter CustomerRef is missing",
                    "CustomerRef",
                )
            if str(ref) not in self.records["Customer"]:
                raise Fault(
                    400,
                    "610",
                    "Object Not Found",
                    f"Something you're trying to use has been made inactive or deleted: Customer {ref}",
                )
        if entity == "Estimate" and record.get("TxnStatus", "Pending") not in ESTIMATE_STATUSES:
            raise Fault(
                400,
                "2010",
                "Request has invalid or unsupported property",
                f"TxnStatus {record.get('TxnStatus')!r} is not one of {', '.join(ESTIMATE_STATUSES)}",
                "TxnStatus",
            )
        if entity == "RefundReceipt":
            account = str((record.get("DepositToAccountRef") or {}).get("value") or "")
            if not account:
                raise Fault(
                    400,
                    "2020",
                    "Required param missing, need to supply the required value for the API",
                    "Required parameter DepositToAccountRef is missing",
                    "DepositToAccountRef",
                )
            if account not in self.records["Account"]:
                raise Fault(
                    400,
                    "610",
                    "Object Not Found",
                    f"Something you're trying to use has been made inactive or deleted: Account {account}",
                    "DepositToAccountRef",
                )
        if entity in TRANSACTIONS:
            lines = record.get("Line")
            if not isinstance(lines, list) or not lines:
                raise Fault(
                    400,
                    "2020",
                    "Required param missing, need to supply the required value for the API",
                    "Required parameter Line is missing",
                    "Line",
                )
            for i, line in enumerate(lines):
                detail = line.get("SalesItemLineDetail")
                if line.get("DetailType") == "SalesItemLineDetail":
                    item = str(((detail or {}).get("ItemRef") or {}).get("value") or "")
                    if item not in self.records["Item"]:
                        raise Fault(
                            400,
                            "610",
                            "Object Not Found",
                            f"Something you're trying to use has been made inactive or deleted: Item {item}",
                            f"Line[{i}].ItemRef",
                        )
                    amount = _dec(line.get("Amount"), f"Line[{i}].Amount")
                    if detail and detail.get("Qty") is not None and detail.get("UnitPrice") is not None:
                        product = (_dec(detail["Qty"], "Qty") * _dec(detail["UnitPrice"], "UnitPrice")).quantize(
                            CENT, ROUND_HALF_UP
                        )
                        if product != amount.quantize(CENT, ROUND_HALF_UP):
                            raise Fault(
                                400,
                                "6070",
                                "Amount is not equal to UnitPrice * Qty",
                                f"Line[{i}]: Supplied value: {amount}, UnitPrice * Qty = {product}",
                                f"Line[{i}].Amount",
                            )

    def price(self, entity: str, record: JSON) -> None:
        lines = record.get("Line") or []
        sales = sum(
            (_dec(ln.get("Amount"), "Amount") for ln in lines if ln.get("DetailType") == "SalesItemLineDetail"),
            Decimal("0"),
        )
        discount = sum(
            (_dec(ln.get("Amount"), "Amount") for ln in lines if ln.get("DetailType") == "DiscountLineDetail"),
            Decimal("0"),
        )
        lines = [ln for ln in lines if ln.get("DetailType") != "SubTotalLineDetail"]
        for n, ln in enumerate(lines, start=1):
            ln.setdefault("Id", str(n))
            ln.setdefault("LineNum", n)
        lines.append({"Amount": _money(sales), "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}})
        record["Line"] = lines
        tax = _dec(((record.get("TxnTaxDetail") or {}).get("TotalTax")) or 0, "TxnTaxDetail.TotalTax")
        record.setdefault("TxnTaxDetail", {})["TotalTax"] = _money(tax)
        total = sales - discount + tax
        record["TotalAmt"] = _money(total)
        if entity in ("SalesReceipt", "RefundReceipt"):
            record["Balance"] = 0
        elif entity == "CreditMemo":
            record["Balance"] = record["RemainingCredit"] = _money(total)
        elif entity == "Invoice":
            paid = sum(
                (
                    Decimal(str(ln["Amount"]))
                    for p in self.records["Payment"].values()
                    for ln in p.get("Line") or []
                    for t in ln.get("LinkedTxn") or []
                    if t.get("TxnType") == "Invoice" and t.get("TxnId") == record.get("Id")
                ),
                Decimal("0"),
            )
            record["Balance"] = _money(total - paid)
        else:
            record.setdefault("Balance", _money(total))

    def apply_payment(self, payment: JSON) -> None:
        total = _dec(payment.get("TotalAmt"), "TotalAmt")
        applied = Decimal("0")
        for line in payment.get("Line") or []:
            amount = _dec(line.get("Amount"), "Line.Amount")
            for link in line.get("LinkedTxn") or []:
                if link.get("TxnType") != "Invoice":
                    continue
                invoice = self.records["Invoice"].get(str(link.get("TxnId")))
                if invoice is None:
                    raise Fault(400, "610", "Object Not Found", f"Invoice {link.get('TxnId')} does not exist")
                balance = Decimal(str(invoice["Balance"]))
                if amount > balance:
                    raise Fault(
                        400,
                        "6000",
                        "A business validation error has occurred while processing your request",
                        f"Business Validation Error: the payment of {amount} is more than the invoice's "
                        f"balance {balance}",
                    )
                invoice["Balance"] = _money(balance - amount)
                invoice.setdefault("LinkedTxn", []).append({"TxnId": payment["Id"], "TxnType": "Payment"})
                invoice["SyncToken"] = str(int(invoice["SyncToken"]) + 1)
                invoice["MetaData"]["LastUpdatedTime"] = _stamp()
                self.changed("Invoice", invoice, "Update")
                applied += amount
        payment["UnappliedAmt"] = _money(total - applied)

    def unapply_payment(self, payment: JSON) -> None:
        for line in payment.get("Line") or []:
            for link in line.get("LinkedTxn") or []:
                invoice = self.records["Invoice"].get(str(link.get("TxnId")))
                if invoice is not None and link.get("TxnType") == "Invoice":
                    invoice["Balance"] = _money(
                        Decimal(str(invoice["Balance"])) + Decimal(str(line.get("Amount") or 0))
                    )
                    links = [
                        t
                        for t in invoice.get("LinkedTxn") or []
                        if not (t.get("TxnType") == "Payment" and t.get("TxnId") == payment["Id"])
                    ]
                    if links:
                        invoice["LinkedTxn"] = links
                    else:
                        invoice.pop("LinkedTxn", None)
                    invoice["SyncToken"] = str(int(invoice["SyncToken"]) + 1)
                    invoice["MetaData"]["LastUpdatedTime"] = _stamp()
                    self.changed("Invoice", invoice, "Update")
        for line in payment.get("Line") or []:
            line["Amount"] = 0
        payment["TotalAmt"] = 0
        payment["UnappliedAmt"] = 0

    # ------------------------------------------------------------------ reads

    def query(self, text: str) -> JSON:
        m = re.fullmatch(
            r"\s*select\s+(\*|count\(\*\))\s+from\s+(\w+)(?:\s+where\s+(.*?))?(?:\s+orderby\s+([\w.]+)(?:\s+(asc|desc))?)?"
            r"(?:\s+startposition\s+(\d+))?(?:\s+maxresults\s+(\d+))?\s*",
            text,
            re.IGNORECASE | re.DOTALL,
        )
        if not m:
            raise Fault(
                400,
                "4000",
                "Error parsing query",
                f"QueryParserError: Encountered an unsupported or malformed query: {text[:200]}",
            )
        what, entity, where, order, direction, start, most = m.groups()
        name = next((v for v in ENTITIES.values() if v.lower() == entity.lower()), None)
        if name is None:
            raise Fault(400, "4001", "Invalid query", f"QueryValidationError: Unknown entity {entity}")
        rows = [r for r in self.records[name].values() if self._matches(r, where or "")]
        rows = self.stock.visible(name, where or "", rows)
        if order:
            rows.sort(key=lambda r: str(_path(r, order) or ""), reverse=(direction or "").lower() == "desc")
        else:
            rows.sort(key=lambda r: int(r["Id"]))
        if what.lower().startswith("count"):
            return {"QueryResponse": {"totalCount": len(rows)}, "time": _stamp()}
        first = int(start or 1)
        size = min(int(most or 100), 1000)
        page = rows[first - 1 : first - 1 + size]
        body: JSON = {"QueryResponse": {}, "time": _stamp()}
        if page:
            body["QueryResponse"] = {name: copy.deepcopy(page), "startPosition": first, "maxResults": len(page)}
        return body

    def _matches(self, record: JSON, where: str) -> bool:
        if not where.strip():
            return True
        for cond in re.split(r"\s+and\s+", where, flags=re.IGNORECASE):
            c = re.fullmatch(r"\s*([\w.]+)\s*(=|<=|>=|<|>|like|in)\s*(.+?)\s*", cond, re.IGNORECASE)
            if not c:
                raise Fault(400, "4000", "Error parsing query", f"QueryParserError: cannot read condition {cond!r}")
            field, op, raw = c.group(1), c.group(2).lower(), c.group(3)
            if field == "PrimaryEmailAddr":
                field = "PrimaryEmailAddr.Address"
            have = _path(record, field)
            if op == "in":
                values = [v.strip().strip("'").replace("\\'", "'") for v in raw.strip("() ").split(",")]
                if (str(have).lower() if isinstance(have, bool) else str(have)) not in values:
                    return False
                continue
            if not (raw.startswith("'") and raw.endswith("'")):
                raise Fault(
                    400, "4000", "Error parsing query", f"QueryParserError: the value of {field} must be quoted"
                )
            want = raw[1:-1].replace("\\'", "'")
            if op == "like":
                pattern = "^" + re.escape(want).replace("%", ".*") + "$"
                if not re.match(pattern, str(have or ""), re.IGNORECASE):
                    return False
                continue
            if have is None:
                return False
            a, b = (str(have), want)
            if field.endswith("Time") or field.endswith("Date"):
                a, b = _when(a), _when(b)  # type: ignore[assignment]
            elif op == "=":
                a, b = a.lower(), b.lower()
            if not {"=": a == b, "<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]:
                return False
        return True

    def cdc(self, entities: list[str], since: str) -> JSON:
        """One QueryResponse per entity asked for (``{}`` when none changed), active records by last
        update then the deleted ones; 1,000 objects at most in all (Intuit's cap)."""
        after = _when(since)
        responses = []
        left = CDC_MAX
        for entity in entities:
            name = next((v for v in ENTITIES.values() if v.lower() == entity.strip().lower()), None)
            if name is None:
                raise Fault(400, "4001", "Invalid query", f"Unknown entity {entity}")

            def recent(rows: Any) -> list[JSON]:
                found = [r for r in rows if _when(r["MetaData"]["LastUpdatedTime"]) > after]
                return sorted(found, key=lambda r: _when(r["MetaData"]["LastUpdatedTime"]))

            changed = [*recent(self.records[name].values()), *recent(self.deleted[name].values())][:left]
            left -= len(changed)
            block: JSON = {}
            if changed:
                block = {name: copy.deepcopy(changed), "startPosition": 1, "maxResults": len(changed)}
            responses.append(block)
        return {"CDCResponse": [{"QueryResponse": responses}], "time": _stamp()}


def _path(record: JSON, field: str) -> Any:
    value: Any = record
    for part in field.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, dict) and "value" in value:
        return value["value"]
    return value


def _when(text: str) -> datetime:
    when = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=UTC)


class Webhooks:
    """Sends each change to the registered endpoints, signed, from a thread of its own."""

    def __init__(self) -> None:
        self.endpoints: list[JSON] = []
        self.deliveries: list[JSON] = []
        self.pending: deque[tuple[str, bytes]] = deque()
        self.lock = threading.Condition()
        self.verifier = VERIFIER_TOKEN
        self._thread: threading.Thread | None = None

    def event(self, realm: str, entity: str, id: str, operation: str, when: str) -> None:
        for ep in self.endpoints:
            if ep["format"] == "legacy":
                body: Any = {
                    "eventNotifications": [
                        {
                            "realmId": realm,
                            "dataChangeEvent": {
                                "entities": [{"id": id, "operation": operation, "name": entity, "lastUpdated": when}]
                            },
                        }
                    ]
                }
            else:
                verb = {
                    "Create": "created",
                    "Update": "updated",
                    "Delete": "deleted",
                    "Void": "voided",
                    "Merge": "merged",
                }[operation]
                body = [
                    {
                        "specversion": "1.0",
                        "id": str(uuid.uuid4()),
                        "source": f"intuit.{base64.b64encode(realm.encode()).decode()}",
                        "type": f"qbo.{entity.lower()}.{verb}.v1",
                        "datacontenttype": "application/json",
                        "time": when,
                        "intuitentityid": id,
                        "intuitaccountid": realm,
                        "data": {},
                    }
                ]
            with self.lock:
                self.pending.append((ep["url"], json.dumps(body).encode()))
        if self.endpoints:
            self._ensure()

    def _ensure(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="qbo-sim-webhooks", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=5.0) as client:
            while True:
                with self.lock:
                    if not self.pending:
                        self.lock.wait(1.0)
                        if not self.pending:
                            continue
                    url, raw = self.pending[0]
                signature = base64.b64encode(hmac.new(self.verifier.encode(), raw, hashlib.sha256).digest()).decode()
                try:
                    status: Any = client.post(
                        url, content=raw, headers={"Content-Type": "application/json", "intuit-signature": signature}
                    ).status_code
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                with self.lock:
                    self.pending.popleft()
                    self.deliveries.append({"url": url, "status": status, "body": json.loads(raw)})
                    self.lock.notify_all()

    def flush(self, timeout: float = 30.0) -> bool:
        end = time.monotonic() + timeout
        with self.lock:
            while self.pending:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self.lock.wait(left)
        return True


class QuickBooksSim:
    def __init__(self) -> None:
        self.webhooks = Webhooks()
        self.reset()

    def reset(self) -> None:
        self.companies: dict[str, Company] = {}
        self.company(REALM)
        self.tokens: dict[str, float | None] = {ACCESS_TOKEN: None}
        self.refresh_tokens: dict[str, str] = {}
        self.calls: dict[str, deque[float]] = {}
        self.per_minute, self.per_second = PER_MINUTE, PER_SECOND
        self.webhooks.endpoints = []

    def company(self, realm: str) -> Company:
        if realm not in self.companies:
            company = Company()
            company.on_change = lambda entity, id, op, when, realm=realm: self.webhooks.event(
                realm, entity, id, op, when
            )
            self.companies[realm] = company
        return self.companies[realm]

    def seed(self, body: JSON) -> JSON:
        company = self.company(str(body.get("realm") or REALM))
        out: JSON = {"items": [], "customers": []}
        with company.lock:
            for item in body.get("items") or []:
                made = company.create("Item", {"Type": "NonInventory", "IncomeAccountRef": {"value": "102"}, **item})
                out["items"].append({"Id": made["Id"], "Name": made["Name"], "Sku": made.get("Sku")})
            for customer in body.get("customers") or []:
                made = company.create("Customer", customer)
                out["customers"].append({"Id": made["Id"], "DisplayName": made["DisplayName"]})
        if "webhooks" in body:
            self.webhooks.endpoints.append(
                {"url": body["webhooks"]["url"], "format": body["webhooks"].get("format", "cloudevents")}
            )
        if "limits" in body:
            self.per_minute = int(body["limits"].get("per_minute", self.per_minute))
            self.per_second = int(body["limits"].get("per_second", self.per_second))
        if "token" in body:
            refresh = "qbo_rt_" + secrets.token_hex(8)
            self.refresh_tokens = {refresh: "current"}
            out["token"] = {"refresh_token": refresh}
        return out

    def throttled(self, realm: str) -> bool:
        now = time.monotonic()
        calls = self.calls.setdefault(realm, deque())
        while calls and now - calls[0] > 60:
            calls.popleft()
        last_second = sum(1 for t in calls if now - t <= 1.0)
        if len(calls) >= self.per_minute or last_second >= self.per_second:
            return True
        calls.append(now)
        return False

    def refresh(self, form: dict[str, str], auth: str) -> tuple[int, JSON]:
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if auth != expected:
            return 401, {"error": "invalid_client"}
        if form.get("grant_type") != "refresh_token":
            return 400, {"error": "unsupported_grant_type"}
        state = self.refresh_tokens.get(form.get("refresh_token", ""))
        if state is None:
            return 400, {"error": "invalid_grant"}
        if state == "current":
            self.refresh_tokens = {k: v for k, v in self.refresh_tokens.items() if v == "current"}
        for key in list(self.refresh_tokens):
            self.refresh_tokens[key] = "previous"
        new_refresh = "qbo_rt_" + secrets.token_hex(8)
        self.refresh_tokens[new_refresh] = "current"
        access = "qbo_at_" + secrets.token_hex(8)
        self.tokens[access] = time.monotonic() + 3600
        return 200, {
            "token_type": "bearer",
            "expires_in": 3600,
            "refresh_token": new_refresh,
            "x_refresh_token_expires_in": 8726400,
            "access_token": access,
        }


def _fault(f: Fault) -> Response:
    return JSONResponse(f.body(), status_code=f.status)


async def _api(request: Request) -> Response:
    sim: QuickBooksSim = request.app.state.sim
    auth = request.headers.get("authorization", "")
    token = auth.removeprefix("Bearer ").strip()
    expires = sim.tokens.get(token, -1.0)
    if token not in sim.tokens or (expires is not None and expires < time.monotonic()):
        return _fault(
            Fault(
                401,
                "3200",
                "message=AuthenticationFailed; errorCode=003200; statusCode=401",
                "Token expired or invalid",
                kind="AUTHENTICATION",
            )
        )
    realm = request.path_params["realm"]
    if sim.throttled(realm):
        f = Fault(
            429,
            "3001",
            "message=ThrottleExceeded; errorCode=003001; statusCode=429",
            "The request limit was reached.",
            kind="SERVICE",
        )
        return JSONResponse(f.body(), status_code=429)
    company = sim.company(realm)
    path = request.path_params["path"].strip("/")
    params = request.query_params
    try:
        if request.method == "GET" and path == "query":
            return JSONResponse(company.query(params.get("query", "")))
        if request.method == "GET" and path == "cdc":
            entities = [e for e in params.get("entities", "").split(",") if e]
            if not entities or not params.get("changedSince"):
                raise Fault(400, "2020", "Required param missing", "cdc needs entities and changedSince")
            return JSONResponse(company.cdc(entities, params["changedSince"]))
        body: Any = None
        if request.method == "POST":
            raw = await request.body()
            if path == "query":
                return JSONResponse(company.query(raw.decode()))
            try:
                body = json.loads(raw) if raw else {}
            except ValueError as exc:
                raise Fault(
                    400, "2010", "Request has invalid or unsupported property", f"body is not JSON: {exc}"
                ) from exc
        request_id = params.get("requestid")
        if request_id and request.method == "POST":
            with company.lock:
                if request_id in company.replies:
                    status, reply = company.replies[request_id]
                    return JSONResponse(reply, status_code=status)
        try:
            status, reply = 200, _dispatch(company, request.method, path, params, body)
        except Fault as f:
            status, reply = f.status, f.body()
        if request_id and request.method == "POST":
            with company.lock:
                company.replies[request_id] = (status, reply)
        return JSONResponse(reply, status_code=status)
    except Fault as f:
        return _fault(f)


def _dispatch(company: Company, method: str, path: str, params: Any, body: Any) -> JSON:
    parts = path.split("/")
    if path == "batch" and method == "POST":
        answers = []
        for item in (body or {}).get("BatchItemRequest") or []:
            bid = item.get("bId")
            try:
                if "Query" in item:
                    answers.append(
                        {"bId": bid, **{k: v for k, v in company.query(item["Query"]).items() if k != "time"}}
                    )
                    continue
                entity = next(k for k in item if k in ENTITIES.values())
                op = item.get("operation", "create")
                answers.append({"bId": bid, entity: _write(company, entity, op, item[entity])})
            except Fault as f:
                answers.append({"bId": bid, "Fault": f.body()["Fault"]})
            except StopIteration:
                answers.append(
                    {
                        "bId": bid,
                        "Fault": Fault(
                            400, "2010", "Request has invalid or unsupported property", "no entity in the batch item"
                        ).body()["Fault"],
                    }
                )
        return {"BatchItemResponse": answers, "time": _stamp()}
    entity = ENTITIES.get(parts[0].lower())
    if entity is None:
        raise Fault(400, "2010", "Request has invalid or unsupported property", f"Unsupported entity: {parts[0]}")
    if method == "GET" and len(parts) == 2:
        record = company.records[entity].get(parts[1])
        if record is None:
            raise Fault(
                400,
                "610",
                "Object Not Found",
                "Object Not Found : Something you're trying to use has been made inactive or deleted. "
                f"{entity} {parts[1]}",
            )
        return {entity: copy.deepcopy(record), "time": _stamp()}
    if method == "POST" and len(parts) == 1:
        if not isinstance(body, dict):
            raise Fault(400, "2010", "Request has invalid or unsupported property", "the body must be an object")
        return {
            entity: _write(
                company, entity, params.get("operation", "create" if not body.get("Id") else "update"), body
            ),
            "time": _stamp(),
        }
    raise Fault(400, "2010", "Request has invalid or unsupported property", f"Unsupported operation {method} {path}")


def _write(company: Company, entity: str, op: str, body: JSON) -> JSON:
    with company.lock:
        if op == "create" and not body.get("Id"):
            return copy.deepcopy(company.create(entity, body))
        if op in ("create", "update"):
            return copy.deepcopy(company.update(entity, body))
        if op == "void":
            return copy.deepcopy(company.void(entity, body))
        if op == "delete":
            return company.delete(entity, body)
    raise Fault(400, "2010", "Request has invalid or unsupported property", f"operation {op!r}")


async def _token(request: Request) -> Response:
    sim: QuickBooksSim = request.app.state.sim
    form = {k: v[-1] for k, v in parse_qs((await request.body()).decode()).items()}
    status, body = sim.refresh(form, request.headers.get("authorization", ""))
    return JSONResponse(body, status_code=status)


async def _webhook_log(request: Request) -> Response:
    sim: QuickBooksSim = request.app.state.sim
    if request.method == "POST":
        body = await request.json()
        sim.webhooks.endpoints.append({"url": body["url"], "format": body.get("format", "cloudevents")})
        return JSONResponse({"endpoints": sim.webhooks.endpoints})
    with sim.webhooks.lock:
        return JSONResponse({"deliveries": list(sim.webhooks.deliveries), "pending": len(sim.webhooks.pending)})


async def _webhook_flush(request: Request) -> Response:
    sim: QuickBooksSim = request.app.state.sim
    return JSONResponse({"flushed": sim.webhooks.flush()})


def create_app() -> Starlette:
    """The QuickBooks Online sim as an ASGI app; its state is ``app.state.sim``."""
    sim = QuickBooksSim()
    control = SimControl(
        reset_data=sim.reset,
        seed_data=sim.seed,
        error_body=lambda status, message: Fault(status, str(status), message).body(),
    )
    app = Starlette(
        routes=[
            Route("/_sim/webhooks", _webhook_log, methods=["GET", "POST"]),
            Route("/_sim/webhooks/flush", _webhook_flush, methods=["POST"]),
            *control.routes(),
            Route("/v3/company/{realm}/{path:path}", _api, methods=["GET", "POST"]),
            Route("/oauth2/v1/tokens/bearer", _token, methods=["POST"]),
        ]
    )
    app.add_middleware(BaseHTTPMiddleware, dispatch=control.dispatch)
    app.state.sim = sim
    app.state.control = control
    return app


def sample_seed() -> JSON:
    """Items for the sample catalog's sellable SKUs (what ``erpsync local up`` seeds)."""
    from sandbox.sims.magento_orders import sample_catalog

    items = [
        {
            "Name": p["sku"],
            "Sku": p["sku"],
            "Description": p["name"],
            "UnitPrice": float(p["price"]),
            "Type": "NonInventory",
        }
        for p in sample_catalog()
        if p.get("type_id") != "configurable"
    ]
    return {"items": items}
