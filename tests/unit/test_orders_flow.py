"""The orders flow on fakes: exactly once, filtered not failed, money to the cent, lost answers."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from erpsync.errors import MappingMissing, OutageError, RateLimitedError, RetryableError, ValidationFailed
from erpsync.flows import catalog
from erpsync.flows.orders import OrderRules
from erpsync.flows.sync import FlowContext
from erpsync.model import ChangeNotice, Order
from erpsync.settings import OrderSyncPreferences, Settings
from erpsync.state.bindings import Bindings
from erpsync.systems.magento.mapping import order_from_magento
from sandbox.sims import magento_orders as mo
from tests.support.fakes import ErpCustomersPort, ErpOrdersPort, FakeErp, FakeStore, StoreOrdersPort

FIXTURES = Path(__file__).parent.parent / "fixtures" / "magento"
D = Decimal


def real_order() -> dict[str, object]:
    """Adobe's sample order 000000003 (simple, downloadable, bundle, configurable)."""
    return dict(json.loads((FIXTURES / "order_get_V1_orders_3.json").read_text()))


def notice(order: Order) -> ChangeNotice:
    return ChangeNotice(source="magento", entity="order", id=order.source_id)


@pytest.fixture
def settings() -> Settings:
    return Settings(tax_id="STORETAX")


def make_flow(bindings_table: str, settings: Settings, *orders: Order) -> tuple[OrderRules, FakeStore, FakeErp]:
    store, erp = FakeStore(list(orders)), FakeErp()
    ctx = FlowContext(
        spec=catalog.get("orders"),
        source="magento",
        target="acumatica",
        source_port=StoreOrdersPort(store),
        target_port=ErpOrdersPort(erp),
        bindings=Bindings(bindings_table),
        settings=settings,
        extra={("customer", "target"): ErpCustomersPort(erp)},
    )
    return OrderRules(ctx), store, erp


def test_real_order_becomes_one_erp_order_once(bindings_table: str, settings: Settings) -> None:
    order = order_from_magento(real_order())
    flow, _, erp = make_flow(bindings_table, settings, order)
    first = flow.sync(notice(order))
    assert first.outcome == "synced"
    [draft] = erp.orders.values()
    assert draft.number == "000000003"
    assert draft.total == D("165.00") == draft.computed_total()
    assert draft.ship_via == "BESTWAY" and draft.payment_method == "WIRE"
    assert draft.freight == D("5.00")
    assert "MH01-S-Gray" in [ln.sku for ln in draft.lines]
    again = flow.sync(notice(order))
    assert again.outcome == "skipped"
    assert len(erp.orders) == 1
    assert erp.calls.count("create_order") == 1


def test_customer_is_found_or_created_once_and_reused(bindings_table: str, settings: Settings) -> None:
    catalog = mo.sample_catalog()
    cust = mo.sample_customer("jane@example.com", customer_id=1)
    orders = [
        order_from_magento(
            mo.build_order(catalog, [mo.CartLine("24-MB01", 1)], customer=cust, entity_id=i, increment_id=f"10{i}")
        )
        for i in (1, 2, 3)
    ]
    flow, _, erp = make_flow(bindings_table, settings, *orders)
    for o in orders:
        assert flow.sync(notice(o)).outcome == "synced"
    assert erp.calls.count("create_customer") == 1
    assert erp.calls.count("find_customer") == 1  # later orders use the binding
    assert len({d.customer_id for d in erp.orders.values()}) == 1


def test_existing_erp_customer_is_used_not_overwritten(bindings_table: str, settings: Settings) -> None:
    order = order_from_magento(real_order())
    flow, _, erp = make_flow(bindings_table, settings, order)
    from erpsync.model import Customer

    erp.customers["JDOE"] = Customer(email="JDoe@example.com", first_name="Original")
    flow.sync(notice(order))
    assert erp.calls.count("create_customer") == 0
    assert next(iter(erp.orders.values())).customer_id == "JDOE"
    assert erp.customers["JDOE"].first_name == "Original"


def test_cart_discount_is_spread_to_the_cent(bindings_table: str, settings: Settings) -> None:
    raw = mo.build_order(
        mo.sample_catalog(),
        [mo.CartLine("24-MB01", 1), mo.CartLine("24-WG084", 3), mo.CartLine("WS12", 1, "WS12-M-Orange")],
        guest_email="g@example.com",
        address=mo.sample_customer()["addresses"][0],
        tax_rate="8.25",
        shipping_amount="7.50",
        entity_id=11,
        increment_id="000000011",
    )
    # a cart-level discount Magento did not put on any item (e.g. a fixed amount off the order)
    for key in ("discount_amount", "base_discount_amount", "grand_total", "base_grand_total"):
        raw[key] = float(D(str(raw[key])) - D("10.01"))
    order = order_from_magento(raw)
    assert order.order_discount == D("10.01")
    flow, _, erp = make_flow(bindings_table, settings, order)
    flow.sync(notice(order))
    [draft] = erp.orders.values()
    assert sum(ln.discount for ln in draft.lines) == D("10.01")
    assert draft.computed_total() == order.grand_total
    assert all(ln.discount == ln.discount.quantize(D("0.01")) for ln in draft.lines)


def test_orders_left_out_by_preferences_are_filtered(bindings_table: str) -> None:
    order = order_from_magento(real_order())  # status pending, nothing paid
    prefs = Settings(tax_id="T", order_sync=OrderSyncPreferences(statuses=["processing"]))
    flow, _, erp = make_flow(bindings_table, prefs, order)
    r = flow.sync(notice(order))
    assert r.outcome == "filtered" and "pending" in r.message
    paid_only = Settings(tax_id="T", order_sync=OrderSyncPreferences(statuses=[], require_payment_captured=True))
    flow2, _, _ = make_flow(bindings_table, paid_only, order)
    r2 = flow2.sync(notice(order))
    assert r2.outcome == "filtered" and "payment not captured" in r2.message
    assert not erp.orders


def test_unmapped_shipping_method_fails_naming_the_setting(bindings_table: str) -> None:
    raw = real_order()
    raw["extension_attributes"]["shipping_assignments"][0]["shipping"]["method"] = "dhl_express"  # type: ignore[index]
    order = order_from_magento(raw)
    flow, _, erp = make_flow(bindings_table, Settings(tax_id="T"), order)
    with pytest.raises(MappingMissing, match=r"dhl_express.*shipping_methods"):
        flow.sync(notice(order))
    flow.ctx.settings = Settings(tax_id="T", default_ship_via="GROUND")
    assert flow.sync(notice(order)).outcome == "synced"
    assert next(iter(erp.orders.values())).ship_via == "GROUND"


def test_tax_without_a_tax_id_is_a_mapping_error(bindings_table: str) -> None:
    raw = mo.build_order(
        mo.sample_catalog(),
        [mo.CartLine("24-MB01", 1)],
        customer=mo.sample_customer(),
        tax_rate="10",
        entity_id=12,
        increment_id="000000012",
    )
    order = order_from_magento(raw)
    flow, _, _ = make_flow(bindings_table, Settings(), order)
    with pytest.raises(MappingMissing, match="tax_id"):
        flow.sync(notice(order))


def test_totals_that_do_not_add_up_fail_with_both_figures(bindings_table: str, settings: Settings) -> None:
    raw = real_order()
    raw["grand_total"] = raw["base_grand_total"] = 170
    order = order_from_magento(raw)
    flow, _, erp = make_flow(bindings_table, settings, order)
    with pytest.raises(ValidationFailed, match=r"165\.00 but the store charged 170\.00"):
        flow.sync(notice(order))
    assert not erp.orders


def test_a_lost_answer_is_found_not_created_twice(bindings_table: str, settings: Settings) -> None:
    order = order_from_magento(real_order())
    flow, _, erp = make_flow(bindings_table, settings, order)
    erp.lose_next_response = True
    with pytest.raises(RetryableError):
        flow.sync(notice(order))
    assert len(erp.orders) == 1  # saved, but we never heard back
    r = flow.sync(notice(order))
    assert r.outcome == "synced" and "found existing" in r.message
    assert len(erp.orders) == 1
    assert flow.sync(notice(order)).outcome == "skipped"


def test_a_create_cut_short_is_not_sent_again_while_the_erp_may_still_apply_it(
    bindings_table: str, settings: Settings
) -> None:
    order = order_from_magento(real_order())
    flow, _, erp = make_flow(bindings_table, settings, order)
    erp.fail_next_create = RetryableError("acumatica timed out: PUT SalesOrder", error_type="timeout")
    with pytest.raises(RetryableError):
        flow.sync(notice(order))
    assert not erp.orders and len(erp.applying) == 1  # the ERP is still working on it
    with pytest.raises(RetryableError, match="got no answer and is not there yet") as held:
        flow.sync(notice(order))
    assert held.value.error_type == "in_doubt" and 0 < (held.value.retry_after or 0) <= settings.in_doubt_wait_s
    assert erp.calls.count("create_order") == 1  # looked for, not sent again
    erp.apply_late()
    r = flow.sync(notice(order))
    assert r.outcome == "synced" and "found existing" in r.message
    assert len(erp.orders) == 1 and erp.calls.count("create_order") == 1


def test_a_create_in_doubt_is_sent_again_once_the_wait_is_over(bindings_table: str) -> None:
    order = order_from_magento(real_order())
    flow, _, erp = make_flow(bindings_table, Settings(tax_id="T", in_doubt_wait_s=0), order)
    erp.fail_next_create = RetryableError("acumatica 504 on PUT SalesOrder", status=504)
    with pytest.raises(RetryableError):
        flow.sync(notice(order))
    erp.applying.clear()  # the gateway's 504 hid a create that never happened
    r = flow.sync(notice(order))
    assert r.outcome == "synced" and "created" in r.message and len(erp.orders) == 1


@pytest.mark.parametrize(
    "refusal",
    [
        RateLimitedError("acumatica 429", status=429),
        OutageError("acumatica 503", status=503),
        RetryableError("acumatica POST not sent: 0.4s left in this invocation", error_type="budget"),
    ],
    ids=["429", "503", "not sent"],
)
def test_a_refused_create_is_sent_again_at_once(bindings_table: str, settings: Settings, refusal: Exception) -> None:
    order = order_from_magento(real_order())
    flow, _, erp = make_flow(bindings_table, settings, order)
    erp.fail_next_create = refusal
    with pytest.raises(RetryableError):
        flow.sync(notice(order))
    r = flow.sync(notice(order))
    assert r.outcome == "synced" and "created" in r.message and len(erp.orders) == 1


def test_first_attempt_makes_no_lookup_unless_asked(bindings_table: str, settings: Settings) -> None:
    order = order_from_magento(real_order())
    flow, _, erp = make_flow(bindings_table, settings, order)
    flow.sync(notice(order))
    assert "find_order" not in erp.calls
    other = order_from_magento({**copy.deepcopy(real_order()), "entity_id": 4, "increment_id": "000000004"})
    careful, _, erp2 = make_flow(bindings_table, Settings(tax_id="T", lookup_before_create=True), other)
    careful.sync(notice(other))
    assert "find_order" in erp2.calls


def test_a_fresh_snapshot_stands_in_for_the_read_and_a_stale_one_does_not(
    bindings_table: str, settings: Settings
) -> None:
    order = order_from_magento(real_order())
    other = order_from_magento({**copy.deepcopy(real_order()), "entity_id": 4, "increment_id": "000000004"})
    flow, store, erp = make_flow(bindings_table, settings, order, other)
    now = datetime.now(UTC)
    fresh = notice(order).model_copy(update={"snapshot": order.model_dump(mode="json"), "read_at": now})
    assert flow.sync(fresh).outcome == "synced"
    assert "get_order" not in store.calls
    stale = notice(other).model_copy(
        update={"snapshot": other.model_dump(mode="json"), "read_at": now - timedelta(seconds=600)}
    )
    assert flow.sync(stale).outcome == "synced"
    assert store.calls.count("get_order") == 1
    assert [d.number for d in erp.orders.values()] == ["000000003", "000000004"]


def test_a_second_store_order_with_a_number_already_sent_is_held_not_sent(
    bindings_table: str, settings: Settings
) -> None:
    """A store that saved two orders under one number (entity 3 and entity 6 as 000000003): the ERP
    gets the first; the second fails as duplicate_number naming both, and no second ERP order exists."""
    from erpsync.errors import PermanentError

    catalog_ = mo.sample_catalog()
    first, second = (
        order_from_magento(
            mo.build_order(
                catalog_,
                [mo.CartLine("24-MB01", 1)],
                customer=mo.sample_customer("jane@example.com", customer_id=1),
                entity_id=eid,
                increment_id="000000003",
            )
        )
        for eid in (3, 6)
    )
    flow, _, erp = make_flow(bindings_table, settings, first, second)
    assert flow.sync(notice(first)).outcome == "synced"
    with pytest.raises(PermanentError) as err:
        flow.sync(notice(second))
    assert err.value.error_type == "duplicate_number"
    assert "000000003" in str(err.value) and "order 3" in str(err.value) and "order 6" in str(err.value)
    assert len(erp.orders) == 1 and erp.calls.count("create_order") == 1
    assert flow.sync(notice(first)).outcome == "skipped"  # the first one is still in step


def test_a_guest_customer_made_for_an_order_is_marked_for_the_erp_to_store_flow(
    bindings_table: str, settings: Settings
) -> None:
    raw = real_order()
    raw.update(customer_is_guest=1, customer_email="guest@example.com")
    raw.pop("customer_id", None)
    order = order_from_magento(raw)
    assert order.customer.is_guest
    flow, _, erp = make_flow(bindings_table, settings, order)
    assert flow.sync(notice(order)).outcome == "synced"
    [customer_id] = {d.customer_id for d in erp.orders.values()}
    assert Bindings(bindings_table).find("customer", "guest", customer_id, "acumatica") == "guest@example.com"


def test_a_create_another_worker_bound_meanwhile_is_taken_not_made_again(bindings_table: str) -> None:
    """Two workers on one dependency (two products of one category, seen in make demo): the slower
    one's pending mark finds the record bound and takes the faster one's, instead of an error."""
    from erpsync.flows.sync import RecordSync
    from erpsync.state.bindings import AlreadyBound

    rules = RecordSync(
        FlowContext(
            spec=catalog.get("categories"),
            source="acumatica",
            target="magento",
            source_port=None,
            target_port=None,
            bindings=Bindings(bindings_table),
            settings=Settings(),
        )
    )
    key = ("category", "acumatica", "2", "magento")
    rules.bindings.bind(*key, "41")  # the faster worker made it and bound it after we read no binding
    made: list[str] = []
    got, created = rules.create_once(key, None, lambda: "41", lambda: made.append("99") or "99")
    assert (got, created, made) == ("41", False, [])
    with pytest.raises(AlreadyBound):  # bound, yet not found on the target: retried, never made twice
        rules.create_once(key, None, lambda: None, lambda: made.append("99") or "99")
    assert made == []


def test_a_worker_that_read_no_binding_before_anothers_lost_create_looks_it_up(bindings_table: str) -> None:
    """Found by the Shopify -> SAP Business One chaos run (two orders booked twice): a webhook
    delivered twice runs two workers; both read no binding, one creates and loses the answer
    (pending, in doubt), then the other takes the lease with the binding it read before: its pending
    mark must make it look first, not create a second order (B1 keeps ``NumAtCard`` not unique)."""
    order = order_from_magento(real_order())
    flow, _, erp = make_flow(bindings_table, Settings(tax_id="T", in_doubt_wait_s=0), order)
    stale = flow.bindings.get("order", "magento", order.source_id, "acumatica")
    assert stale is None  # the second worker's read, before the first one wrote anything
    erp.lose_next_response = True
    with pytest.raises(RetryableError):
        flow.sync(notice(order))  # the first worker: applied, answer lost, left pending
    r = flow.write(order, stale)  # the second worker, past the lease, with what it read
    assert r.outcome == "synced" and "found existing" in r.message
    assert len(erp.orders) == 1 and erp.calls.count("create_order") == 1
