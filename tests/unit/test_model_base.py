"""The models' base (``erpsync/model/base.py``): msgspec structs that keep what the pydantic models
promised: values converted or refused by name, documents read with the path of a wrong value,
unknown fields refused, and the same JSON (so content hashes stored before still match)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from erpsync.flows.base import content_hash
from erpsync.model import (
    Address,
    ChangeNotice,
    Customer,
    DocumentLine,
    DraftLine,
    OrderLine,
    SalesOrderDraft,
    Shipment,
    Track,
)
from erpsync.model.base import ValidationError
from erpsync.model.catalog import PriceSet, SpecialPrice, StockLevel, TierPrice, WarehouseQty
from erpsync.settings import Settings
from erpsync.systems.magento.settings import MagentoSecret


def _records() -> dict[str, object]:
    """Records of Magento's sample order (Veronica Costello's WS12-M-Orange), as the flows build them."""
    return {
        "draft": SalesOrderDraft(
            number="000000042",
            customer_id="W1A2B3C4D5E",
            date=datetime(2025, 5, 1, 10, 0, 0, 123456, tzinfo=UTC),
            currency="EUR",
            exchange_rate=Decimal("0.9120"),
            bill_to=Address(first_name="Veronica", street=["6146 Honey Bluff Parkway"], city="Calder", country="US"),
            ship_to=None,
            email="roni_cost@example.com",
            lines=[
                DraftLine(
                    line_id="1",
                    sku="WS12-M-Orange",
                    qty=Decimal("2"),
                    unit_price=Decimal("22.00"),
                    discount=Decimal("4.40"),
                )
            ],
            freight=Decimal("10.00"),
            tax_total=Decimal("3.27"),
            total=Decimal("52.87"),
            note="Leave at door",
        ),
        "prices": PriceSet(
            sku="WS12",
            base=Decimal("22"),
            special=SpecialPrice(
                price=Decimal("19.99"), starts=datetime(2025, 1, 1, tzinfo=timezone(timedelta(hours=2)))
            ),
            tiers=[TierPrice(group="ALL", qty=Decimal("5"), price=Decimal("20.5"))],
            version="v1",
        ),
        "stock": StockLevel(
            sku="WS12",
            warehouses={"WH1": WarehouseQty(on_hand=Decimal("5.0000"), available=Decimal("3"))},
            quantities={"default": Decimal("3")},
            in_stock={"default": True},
        ),
        "shipment": Shipment(
            source_id="S1",
            lines=[DocumentLine(order_number="SO1", qty=Decimal("1"))],
            tracks=[Track(number="1Z")],
            ship_date=datetime(2025, 5, 2),
        ),
        "customer": Customer(email="Roni_Cost@Example.com ", first_name="Veronica", address=Address(city="Calder")),
        "notice": ChangeNotice(
            source="magento",
            entity="order",
            id="7",
            occurred_at=datetime(2025, 5, 1, 10, tzinfo=UTC),
            snapshot={"a": [1, 2.5, None]},
        ),
    }


def test_content_hashes_are_those_the_pydantic_models_gave() -> None:
    """Computed with the pydantic models (commit f75da69) from the same records: a binding's stored
    hash still recognises the echo of a write made before the change."""
    hashes = {name: content_hash(record) for name, record in _records().items()}  # type: ignore[arg-type]
    assert hashes == {
        "draft": "5d62a4f82a085c35481cc260212ed5d7",
        "prices": "89076a3d0f800970511804e47cc64539",
        "stock": "5f7afab11e99c65ef4205339d9aeb011",
        "shipment": "6e7683174061870735d31b5a18434e6b",
        "customer": "c240588ddb77684ae33b59688625f640",
        "notice": "7ac3ece1566739fbb8497d14114287cf",
    }


def test_a_queued_notice_is_the_json_the_pydantic_models_wrote() -> None:
    """``exclude_none`` leaves out a model's None fields only: a None inside the snapshot stays."""
    notice = ChangeNotice(
        source="m", entity="order", id="7", snapshot={"b": None, "c": {"d": None, "e": [None, {"f": None}]}}
    )
    assert notice.model_dump_json(exclude_none=True) == (
        '{"source":"m","entity":"order","id":"7","snapshot":{"b":null,"c":{"d":null,"e":[null,{"f":null}]}}}'
    )
    assert ChangeNotice.model_validate_json(notice.model_dump_json()) == notice
    stamped = _records()["notice"]
    assert isinstance(stamped, ChangeNotice)
    assert '"occurred_at":"2025-05-01T10:00:00Z"' in stamped.model_dump_json()


def test_a_record_made_in_code_converts_what_it_can_and_names_what_it_cannot() -> None:
    line = OrderLine(line_id="1", sku="WS12-M-Orange", qty="2", unit_price=22.1)  # type: ignore[arg-type]
    assert line.qty == Decimal("2") and line.unit_price == Decimal("22.1") and line.row_total == Decimal("44.20")
    with pytest.raises(ValidationError) as refused:
        OrderLine(line_id="1", sku="WS12-M-Orange", qty="two", unit_price=1)  # type: ignore[arg-type]
    assert refused.value.loc == ("qty",) and "OrderLine.qty" in str(refused.value)
    with pytest.raises(ValidationError, match="not an email address"):
        Customer(email="veronica at example.com")
    assert Customer(email=" Roni_Cost@Example.com").email == "roni_cost@example.com"
    with pytest.raises(TypeError, match="skuu"):
        OrderLine(line_id="1", skuu="x", qty=1, unit_price=1)  # type: ignore[call-arg]


def test_a_document_is_read_with_the_path_and_value_of_what_is_wrong() -> None:
    with pytest.raises(ValidationError) as low:
        Settings.model_validate({"max_attempts": 0})
    assert low.value.errors() == [{"loc": ("max_attempts",), "msg": "Expected `int` >= 1", "input": 0}]
    with pytest.raises(ValidationError) as deep:
        Settings.model_validate({"order_rules": [{"name": "pos", "then": {"set": {"grand_total": "0"}}}]})
    assert deep.value.loc == ("order_rules", 0, "then", "set") and "grand_total cannot be set" in deep.value.msg
    with pytest.raises(ValidationError) as unknown:
        Settings.model_validate({"tax_idd": "AVATAX"})
    assert unknown.value.errors() == [{"loc": ("tax_idd",), "msg": "unknown field", "input": "AVATAX"}]
    with pytest.raises(ValidationError) as missing:
        SalesOrderDraft.model_validate({"number": "1"})
    assert missing.value.msg == "field required" and missing.value.model == "SalesOrderDraft"
    with pytest.raises(ValidationError) as keyed:
        Settings.model_validate({"rate_limits": {"quickbooks": {"per_minute": 0}}})
    assert keyed.value.loc == ("rate_limits", "*", "per_minute")  # msgspec does not name a map's key


def test_a_secret_ignores_keys_it_does_not_know_and_a_settings_model_refuses_them() -> None:
    secret = MagentoSecret.model_validate(
        {"base_url": "https://shop/rest/default", "username": "u", "password": "p", "note": "rotated"}
    )
    assert secret.username == "u"
    with pytest.raises(ValidationError, match="password"):
        MagentoSecret.model_validate({"base_url": "https://shop/rest/default", "username": "u", "password": ""})


def test_a_copy_checks_its_update_and_a_dump_keeps_python_values() -> None:
    line = DraftLine(line_id="1", sku="WS12", qty=Decimal(1), unit_price=Decimal("22.00"))
    assert line.model_copy(update={"qty": "3"}).qty == Decimal("3") and line.qty == Decimal(1)
    with pytest.raises(ValidationError):
        line.model_copy(update={"qty": "three"})
    dumped = _records()["draft"].model_dump()  # type: ignore[attr-defined]
    assert dumped["lines"][0]["unit_price"] == Decimal("22.00") and dumped["date"].tzinfo is UTC
    assert dumped["bill_to"]["street"] == ["6146 Honey Bluff Parkway"]
    json_dump = _records()["draft"].model_dump(mode="json", exclude={"note"})  # type: ignore[attr-defined]
    assert json_dump["total"] == "52.87" and "note" not in json_dump
