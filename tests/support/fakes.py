"""In-memory Store and Erp for flow unit tests: they record every call and can fail on cue."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from erpsync.errors import NotFoundError
from erpsync.model import ChangeNotice, Customer, ErpOrderRef, Invoice, Order, SalesOrderDraft, Shipment


class _Recording:
    """Records each call by name; ``fail_next`` makes the next call raise (set it to a function)."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.fail_next: Callable[[], None] | None = None

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if self.fail_next:
            fail, self.fail_next = self.fail_next, None
            fail()


class FakeStore(_Recording):
    name = "magento"

    def __init__(self, orders: list[Order] | None = None) -> None:
        super().__init__()
        self.orders = {o.source_id: o for o in orders or []}
        self.shipments: dict[str, tuple[str, Shipment, str, str]] = {}
        self.invoices: dict[str, tuple[str, Invoice, str]] = {}

    def changed_orders(self, since: datetime) -> list[ChangeNotice]:
        self._call("changed_orders")
        return [
            ChangeNotice(source="magento", entity="order", id=o.source_id, occurred_at=o.updated_at)
            for o in self.orders.values()
            if o.updated_at and o.updated_at > since
        ]

    def get_order(self, order_id: str, snapshot: dict[str, Any] | None = None) -> Order:
        if snapshot is not None:
            return Order.model_validate(snapshot)
        self._call("get_order")
        if order_id not in self.orders:
            raise NotFoundError(f"order {order_id} not found")
        return self.orders[order_id]

    def find_order_id(self, number: str) -> str | None:
        return next((o.source_id for o in self.orders.values() if o.number == number), None)

    def find_shipment(self, order_id: str, ref: str) -> str | None:
        self._call("find_shipment")
        return next((k for k, v in self.shipments.items() if v[0] == order_id and v[2] == ref), None)

    def create_shipment(self, order_id: str, shipment: Shipment, ref: str, carrier_code: str) -> str:
        self._call("create_shipment")
        sid = str(len(self.shipments) + 1)
        self.shipments[sid] = (order_id, shipment, ref, carrier_code)
        return sid

    def find_invoice(self, order_id: str, ref: str) -> str | None:
        self._call("find_invoice")
        return next((k for k, v in self.invoices.items() if v[0] == order_id and v[2] == ref), None)

    def create_invoice(self, order_id: str, invoice: Invoice, ref: str) -> str:
        self._call("create_invoice")
        iid = str(len(self.invoices) + 1)
        self.invoices[iid] = (order_id, invoice, ref)
        return iid


class FakeErp(_Recording):
    name = "acumatica"

    def __init__(self) -> None:
        super().__init__()
        self.customers: dict[str, Customer] = {}
        self.orders: dict[str, SalesOrderDraft] = {}
        self.shipments: dict[str, Shipment] = {}
        self.invoices: dict[str, Invoice] = {}
        self.lose_next_response = False
        self.fail_next_create: Exception | None = None
        """Raised by the next create_order instead of saving (a refusal, or a create cut short)."""
        self.applying: list[SalesOrderDraft] = []
        """Creates cut short that the ERP is still applying (``apply_late`` saves them)."""

    def apply_late(self) -> None:
        """The ERP finishes the creates it was still applying after the client gave up."""
        for draft in self.applying:
            self.orders[f"SO{len(self.orders) + 1:06d}"] = draft
        self.applying.clear()

    def find_customer(self, email: str) -> str | None:
        self._call("find_customer")
        return next((cid for cid, c in self.customers.items() if c.email == email), None)

    def create_customer(self, customer: Customer, customer_id: str) -> str:
        self._call("create_customer")
        self.customers.setdefault(customer_id, customer)
        return customer_id

    def find_order(self, number: str) -> ErpOrderRef | None:
        self._call("find_order")
        for nbr, d in self.orders.items():
            if d.number == number:
                return self._ref(nbr, d)
        return None

    def create_order(self, draft: SalesOrderDraft) -> ErpOrderRef:
        self._call("create_order")
        if self.fail_next_create is not None:
            exc, self.fail_next_create = self.fail_next_create, None
            if getattr(exc, "error_type", "") == "timeout":
                self.applying.append(draft)  # the client gave up; the ERP goes on
            raise exc
        nbr = f"SO{len(self.orders) + 1:06d}"
        self.orders[nbr] = draft
        if self.lose_next_response:
            self.lose_next_response = False
            from erpsync.errors import RetryableError

            raise RetryableError("read timeout (the order was saved, the answer lost)")
        return self._ref(nbr, draft)

    @staticmethod
    def _ref(nbr: str, d: SalesOrderDraft) -> ErpOrderRef:
        line_map = {str(i + 1): ln.line_id for i, ln in enumerate(d.lines)}
        return ErpOrderRef(id=f"guid-{nbr}", number=nbr, order_type="SO", status="Open", line_map=line_map)

    def changed_shipments(self, since: datetime) -> list[ChangeNotice]:
        return [ChangeNotice(source="acumatica", entity="shipment", id=k) for k in self.shipments]

    def get_shipment(self, shipment_id: str) -> Shipment:
        self._call("get_shipment")
        return self.shipments[shipment_id]

    def changed_invoices(self, since: datetime) -> list[ChangeNotice]:
        return [ChangeNotice(source="acumatica", entity="invoice", id=k) for k in self.invoices]

    def get_invoice(self, invoice_id: str) -> Invoice:
        self._call("get_invoice")
        return self.invoices[invoice_id]


def as_dict(x: Any) -> Any:
    return x.model_dump(mode="json") if hasattr(x, "model_dump") else x


class StoreOrdersPort:
    """``FakeStore`` seen through the orders flow's source port."""

    def __init__(self, store: FakeStore) -> None:
        self.store = store

    def get(self, id: str, snapshot: dict[str, Any] | None = None) -> Order:
        return self.store.get_order(id, snapshot)

    def find(self, number: str) -> str | None:
        return self.store.find_order_id(number)


class ErpOrdersPort:
    """``FakeErp`` seen through the orders flow's target port."""

    def __init__(self, erp: FakeErp) -> None:
        self.erp = erp

    def find(self, number: str) -> ErpOrderRef | None:
        return self.erp.find_order(number)

    def create(self, draft: SalesOrderDraft) -> ErpOrderRef:
        return self.erp.create_order(draft)


class ErpCustomersPort:
    """``FakeErp``'s customers as the orders flow's customer dependency sees them."""

    def __init__(self, erp: FakeErp, prefix: str = "W") -> None:
        self.erp, self.prefix = erp, prefix

    def find(self, email: str) -> list[Customer]:
        cid = self.erp.find_customer(email)
        return [Customer(email=email, source_id=cid)] if cid else []

    def create(self, customer: Customer) -> Customer:
        import hashlib

        derived = self.prefix + hashlib.sha256(customer.email.encode()).hexdigest()[:10].upper()
        return customer.model_copy(update={"source_id": self.erp.create_customer(customer, derived)})
