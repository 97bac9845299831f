"""Canonical records to Acumatica records and back."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from erpsync.model import Address, Customer, DraftLine, SalesOrderDraft
from erpsync.systems.acumatica import mapping
from erpsync.systems.acumatica.client import unwrap, wrap


def draft(**changes: object) -> SalesOrderDraft:
    base: dict[str, object] = {
        "number": "000000042",
        "customer_id": "MAG0001",
        "date": datetime(2024, 5, 10, 12, 0, tzinfo=UTC),
        "currency": "USD",
        "description": "magento order 000000042",
        "ship_via": "UPS",
        "payment_method": "CHECK",
        "email": "ann@example.com",
        "bill_to": Address(
            first_name="Ann",
            last_name="Lee",
            street=["1 Main St", "Suite 2"],
            city="Austin",
            region="Texas",
            region_code="TX",
            postcode="78701",
            country="US",
            phone="555",
        ),
        "ship_to": Address(
            first_name="Bob",
            last_name="Lee",
            street=["9 Side Rd"],
            city="Dallas",
            region_code="TX",
            postcode="75201",
            country="US",
        ),
        "lines": [
            DraftLine(
                line_id="11",
                sku="SKU-A",
                description="Shirt",
                qty=Decimal(2),
                unit_price=Decimal("10.00"),
                discount=Decimal("1.50"),
            ),
            DraftLine(line_id="12", sku="SKU-B", qty=Decimal(1), unit_price=Decimal("5.00")),
        ],
        "freight": Decimal("7.00"),
        "tax_total": Decimal("2.10"),
        "tax_id": "STATETAX",
        "total": Decimal("32.60"),
    }
    base.update(changes)
    return SalesOrderDraft.model_validate(base)


def test_sales_order_record_wraps_every_field() -> None:
    rec = mapping.sales_order_record(draft(), order_type="SO", warehouse_id="WHOLESALE")
    assert rec["OrderType"] == {"value": "SO"}
    assert rec["CustomerID"] == {"value": "MAG0001"}
    assert rec["CustomerOrder"] == rec["ExternalRef"] == {"value": "000000042"}
    assert rec["Date"] == {"value": "2024-05-10T12:00:00+00:00"}
    assert rec["ShipVia"] == {"value": "UPS"} and rec["ShippingSettings"] == {"ShipVia": {"value": "UPS"}}
    assert rec["PaymentMethod"] == {"value": "CHECK"}
    assert rec["CurrencyID"] == {"value": "USD"}


def test_addresses_are_overridden() -> None:
    rec = mapping.sales_order_record(draft())
    for flag in ("BillToContactOverride", "BillToAddressOverride", "ShipToContactOverride", "ShipToAddressOverride"):
        assert rec[flag] == {"value": True}
    assert rec["BillToAddress"]["AddressLine1"] == {"value": "1 Main St"}
    assert rec["BillToAddress"]["AddressLine2"] == {"value": "Suite 2"}
    assert rec["BillToAddress"]["State"] == {"value": "TX"}
    assert rec["ShipToAddress"]["City"] == {"value": "Dallas"}
    assert rec["ShipToContact"]["Attention"] == {"value": "Bob Lee"}
    assert rec["BillToContact"]["Email"] == {"value": "ann@example.com"}


def test_ship_to_defaults_to_bill_to() -> None:
    rec = mapping.sales_order_record(draft(ship_to=None))
    assert rec["ShipToAddress"] == rec["BillToAddress"]


def test_lines_carry_manual_discounts_and_the_store_line_id() -> None:
    rec = mapping.sales_order_record(draft(), warehouse_id="WHOLESALE")
    first, second = rec["Details"]
    assert first["InventoryID"] == {"value": "SKU-A"}
    assert first["OrderQty"] == {"value": 2.0} and first["UnitPrice"] == {"value": 10.0}
    assert first["DiscountAmount"] == {"value": 1.5} and first["ManualDiscount"] == {"value": True}
    assert first["WarehouseID"] == {"value": "WHOLESALE"}
    assert first["LineDescription"] == {"value": "Shirt [ref:11]"}
    assert second["LineDescription"] == {"value": "SKU-B [ref:12]"}
    assert mapping.line_id_of(first["LineDescription"]["value"]) == "11"
    assert "WarehouseID" not in mapping.sales_order_record(draft())["Details"][0]


def test_long_descriptions_keep_the_marker_within_256_characters() -> None:
    text = mapping.line_description("x" * 300, "123456")
    assert len(text) <= 256 and mapping.line_id_of(text) == "123456"


def test_premium_freight_and_tax() -> None:
    rec = mapping.sales_order_record(draft())
    assert rec["Totals"] == {"PremiumFreight": {"value": 7.0}}
    assert rec["DisableAutomaticTaxCalculation"] == {"value": True}
    assert rec["IsTaxValid"] == {"value": True}
    assert rec["TaxDetails"] == [{"TaxID": {"value": "STATETAX"}, "TaxAmount": {"value": 2.1}}]


def test_no_freight_no_tax_when_none() -> None:
    rec = mapping.sales_order_record(
        draft(freight=Decimal(0), tax_total=Decimal(0), tax_id=None, total=Decimal("23.50"))
    )
    assert "Totals" not in rec and "TaxDetails" not in rec and "DisableAutomaticTaxCalculation" not in rec


def test_customer_record() -> None:
    customer = Customer(
        email="Ann@Example.com",
        first_name="Ann",
        last_name="Lee",
        phone="555",
        address=Address(street=["1 Main St"], city="Austin", region_code="TX", postcode="78701", country="US"),
    )
    rec = mapping.customer_record(customer, "MAG0001", customer_class="ECOMM")
    assert rec["CustomerID"] == {"value": "MAG0001"}
    assert rec["CustomerName"] == {"value": "Ann Lee"}
    assert rec["CustomerClass"] == {"value": "ECOMM"}
    assert rec["MainContact"]["Email"] == {"value": "ann@example.com"}
    assert rec["MainContact"]["Phone1"] == {"value": "555"}
    assert rec["MainContact"]["Address"]["PostalCode"] == {"value": "78701"}


def test_line_map_from_returned_details() -> None:
    details = [
        {"LineNbr": {"value": 1}, "LineDescription": {"value": "Shirt [ref:11]"}},
        {"LineNbr": {"value": 2}, "LineDescription": {"value": "no marker"}},
        {"LineNbr": {"value": 3}, "LineDescription": {"value": "Hat [ref:abc-9]"}},
    ]
    assert mapping.line_map(details) == {"1": "11", "3": "abc-9"}


SHIPMENT = {
    "id": "8a5f",
    "ShipmentNbr": {"value": "000007"},
    "Status": {"value": "Confirmed"},
    "ShipmentDate": {"value": "2024-05-11T00:00:00+03:00"},
    "ShipVia": {"value": "UPS"},
    "LastModifiedDateTime": {"value": "2024-05-11T10:00:00.123+00:00"},
    "Details": [
        {
            "OrderType": {"value": "SO"},
            "OrderNbr": {"value": "000001"},
            "OrderLineNbr": {"value": 2},
            "InventoryID": {"value": "SKU-B"},
            "ShippedQty": {"value": 1.0},
        },
    ],
    "Packages": [{"TrackingNbr": {"value": "1Z999"}, "Weight": {"value": 2}}, {"TrackingNbr": {"value": None}}],
}


def test_shipment_to_canonical() -> None:
    s = mapping.shipment(SHIPMENT)
    assert s.source_id == "000007" and s.confirmed and s.status == "Confirmed"
    assert s.ship_via == "UPS" and s.ship_date is not None and s.ship_date.utcoffset() is not None
    assert s.updated_at == datetime(2024, 5, 11, 10, 0, 0, 123000, tzinfo=UTC)
    (line,) = s.lines
    assert (line.order_number, line.order_type, line.line_nbr, line.sku, line.qty) == (
        "000001",
        "SO",
        "2",
        "SKU-B",
        Decimal(1),
    )
    assert [t.number for t in s.tracks] == ["1Z999"]


def test_open_shipment_is_not_confirmed() -> None:
    assert not mapping.shipment(SHIPMENT | {"Status": {"value": "Open"}}).confirmed
    assert mapping.shipment(SHIPMENT | {"Status": {"value": "Invoiced"}}).confirmed


def test_invoice_to_canonical() -> None:
    rec = {
        "ReferenceNbr": {"value": "000003"},
        "Type": {"value": "Invoice"},
        "Status": {"value": "Open"},
        "Amount": {"value": 32.6},
        "CurrencyID": {"value": "USD"},
        "Date": {"value": "2024-05-12T00:00:00"},
        "Details": [
            {
                "OrderType": {"value": "SO"},
                "OrderNbr": {"value": "000001"},
                "OrderLineNbr": {"value": 1},
                "InventoryID": {"value": "SKU-A"},
                "Qty": {"value": 2},
            }
        ],
    }
    inv = mapping.invoice(rec)
    assert inv.source_id == "000003" and inv.released and inv.amount == Decimal("32.6") and inv.currency == "USD"
    assert inv.lines[0].line_nbr == "1" and inv.lines[0].qty == Decimal(2) and inv.lines[0].order_key == "SO/000001"
    assert not mapping.invoice(rec | {"Status": {"value": "Balanced"}}).released


def test_wrap_and_unwrap() -> None:
    plain = {
        "CustomerID": "C1",
        "Amount": Decimal("1.50"),
        "MainContact": {"Email": "a@b.c"},
        "Lines": [{"Qty": 1}],
        "Skip": None,
    }
    wrapped = wrap(plain)
    assert wrapped == {
        "CustomerID": {"value": "C1"},
        "Amount": {"value": 1.5},
        "MainContact": {"Email": {"value": "a@b.c"}},
        "Lines": [{"Qty": {"value": 1}}],
    }
    assert unwrap(wrapped | {"id": "g", "_links": {}}) == {
        "CustomerID": "C1",
        "Amount": 1.5,
        "MainContact": {"Email": "a@b.c"},
        "Lines": [{"Qty": 1}],
        "id": "g",
    }
