"""OData v2 values as S/4HANA writes them (SYSTEMS-NOTES §4.6): ``/Date()/`` in both forms to the ms,
``Edm.Time`` durations, decimals as strings read and written digit for digit, filter literals with
quotes doubled, the ``{"d": …}`` envelope, and etags kept byte for byte."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal

import pytest

from erpsync.systems.sap_s4 import odata_v2 as v2

# the values SYSTEMS-NOTES §4.6 quotes from a recorded A_SalesOrder answer
ETAG = "W/\"datetimeoffset'2005-10-24T15%3A36%3A52.0000000Z'\""


def test_edm_datetime_is_utc_milliseconds() -> None:
    assert v2.parse_datetime("/Date(1130112000000)/") == datetime(2005, 10, 24, tzinfo=UTC)
    assert v2.parse_datetime("/Date(1130168212123)/") == datetime(2005, 10, 24, 15, 36, 52, 123000, tzinfo=UTC)
    assert v2.parse_datetime("/Date(-86400000)/") == datetime(1969, 12, 31, tzinfo=UTC)


def test_edm_datetimeoffset_keeps_its_offset_on_the_same_instant() -> None:
    utc = v2.parse_datetime("/Date(1130168212000+0000)/")
    assert utc == datetime(2005, 10, 24, 15, 36, 52, tzinfo=UTC) and utc is not None and utc.utcoffset() == timedelta(0)
    shifted = v2.parse_datetime("/Date(1130168212000+0060)/")
    assert shifted is not None and shifted.utcoffset() == timedelta(hours=1)
    assert shifted == utc and shifted.hour == 16
    behind = v2.parse_datetime("/Date(1130168212000-0300)/")
    assert behind is not None and behind.utcoffset() == -timedelta(hours=5) and behind == utc


def test_iso_dates_some_gateways_write_are_read_and_junk_is_refused() -> None:
    assert v2.parse_datetime("2025-03-01T10:00:00") == datetime(2025, 3, 1, 10, tzinfo=UTC)
    assert v2.parse_datetime("2025-03-01T10:00:00+02:00") == datetime(2025, 3, 1, 8, tzinfo=UTC)
    assert v2.parse_datetime(None) is None and v2.parse_datetime("") is None
    for junk in ("/Date(abc)/", "Date(1130112000000)", "yesterday", "/Date(1130112000000+00:00)/"):
        with pytest.raises(v2.ODataValueError):
            v2.parse_datetime(junk)


def test_dates_written_go_back_as_they_were_read() -> None:
    assert v2.format_datetime(date(2005, 10, 24)) == "/Date(1130112000000)/"
    at = datetime(2005, 10, 24, 15, 36, 52, 123456, tzinfo=UTC)
    assert v2.format_datetime(at) == "/Date(1130168212123)/"
    assert v2.format_datetimeoffset(at.astimezone(timezone(timedelta(hours=2)))) == "/Date(1130168212123+0000)/"
    for text in ("/Date(1130112000000)/", "/Date(-62135596800000)/", "/Date(253402300799999)/"):
        parsed = v2.parse_datetime(text)
        assert parsed is not None and v2.format_datetime(parsed) == text


def test_edm_time_is_a_duration_of_the_day() -> None:
    assert v2.parse_time("PT17H49M08S") == time(17, 49, 8)
    assert v2.parse_time("PT00H00M00S") == time(0, 0, 0)
    assert v2.parse_time("PT9H5M") == time(9, 5)
    assert v2.parse_time("PT17H49M08.1234567S") == time(17, 49, 8, 123456)
    assert v2.format_time(time(8, 5, 9)) == "PT08H05M09S"
    assert v2.parse_time(v2.format_time(time(23, 59, 59))) == time(23, 59, 59)
    assert v2.parse_time(None) is None
    for junk in ("PT", "17:49:08", "PT25H00M00S", "P1D"):
        with pytest.raises(v2.ODataValueError):
            v2.parse_time(junk)


def test_decimals_are_strings_read_and_written_digit_for_digit() -> None:
    assert v2.parse_decimal("2656.24") == Decimal("2656.24")
    rate = v2.parse_decimal("1.00000")
    assert rate is not None and str(rate) == "1.00000"  # the scale S/4 wrote is kept
    assert v2.parse_decimal("-0.005") == Decimal("-0.005") and v2.parse_decimal(None) is None
    assert v2.format_decimal(Decimal("12.50")) == "12.50"
    assert v2.format_decimal(Decimal("1E+1")) == "10"
    assert v2.format_decimal(Decimal("0.000000001")) == "0.000000001"
    assert v2.format_decimal(3) == "3"
    assert v2.format_decimal(v2.parse_decimal("123456789012.345") or 0) == "123456789012.345"


def test_floats_are_never_money() -> None:
    with pytest.raises(TypeError):
        v2.format_decimal(12.5)  # type: ignore[arg-type]
    with pytest.raises(v2.ODataValueError):
        v2.parse_decimal(0.1)
    for junk in ("12,50", "NaN", "Infinity", "", "abc"):
        with pytest.raises((v2.ODataValueError, TypeError)):
            v2.format_decimal(junk)


def test_filter_literals() -> None:
    assert v2.literal("O'Brien") == "'O''Brien'"
    assert v2.literal("#1001") == "'#1001'"  # URL encoding is the client's
    assert v2.literal("''") == "''''''"
    assert v2.literal(datetime(2025, 3, 1, tzinfo=UTC)) == "datetimeoffset'2025-03-01T00:00:00Z'"
    assert (
        v2.literal(datetime(2025, 3, 1, 1, 30, tzinfo=timezone(timedelta(hours=2))))
        == "datetimeoffset'2025-02-28T23:30:00Z'"
    )
    assert v2.literal(datetime(2025, 3, 1, 0, 0, 0, 120000, tzinfo=UTC)) == "datetimeoffset'2025-03-01T00:00:00.12Z'"
    assert v2.literal(datetime(2025, 3, 1)) == "datetime'2025-03-01T00:00:00'"
    assert v2.literal(date(2025, 3, 1)) == "datetime'2025-03-01T00:00:00'"
    assert v2.literal(Decimal("12.50")) == "12.50M"
    assert (v2.literal(10), v2.literal(True)) == ("10", "true")
    with pytest.raises(TypeError):
        v2.literal(1.5)  # type: ignore[arg-type]


def test_the_envelope_of_a_collection_and_of_one_entity() -> None:
    body = {
        "d": {
            "results": [{"SalesOrder": "4000043"}, {"SalesOrder": "4000044"}],
            "__count": "123",
            "__next": "A_SalesOrder?$skiptoken=2",
        }
    }
    page = v2.collection(body)
    assert [r["SalesOrder"] for r in page.rows] == ["4000043", "4000044"]
    assert (page.count, page.next) == (123, "A_SalesOrder?$skiptoken=2")
    last = v2.collection({"d": {"results": []}})
    assert (last.rows, last.next, last.count) == ([], None, None)
    assert v2.unwrap({"d": {"SalesOrder": "1"}}) == {"SalesOrder": "1"}
    junks: list[object] = [{"value": []}, {"d": {"SalesOrder": "1"}}, [], None]
    for junk in junks:
        with pytest.raises(v2.ODataValueError):
            v2.collection(junk)
    with pytest.raises(v2.ODataValueError):
        v2.unwrap({"value": {}})


def test_expanded_navigations_and_deferred_ones() -> None:
    entity = {
        "to_Item": {"results": [{"SalesOrderItem": "10"}]},
        "to_Partner": {
            "__deferred": {"uri": "https://host/sap/opu/odata/sap/API_SALES_ORDER_SRV/A_SalesOrder('1')/to_Partner"}
        },
        "to_Text": [{"Language": "EN"}],
        "to_One": {"__metadata": {}, "Key": "K"},
    }
    assert v2.expanded(entity, "to_Item") == [{"SalesOrderItem": "10"}]
    assert v2.expanded(entity, "to_Partner") is None
    assert v2.expanded(entity, "to_Text") == [{"Language": "EN"}]
    assert v2.expanded(entity, "to_One") == [{"__metadata": {}, "Key": "K"}]
    assert v2.expanded(entity, "to_Missing") is None


def test_etags_are_kept_byte_for_byte() -> None:
    entity = {"__metadata": {"id": "x", "uri": "x", "type": "API_SALES_ORDER_SRV.A_SalesOrderType", "etag": ETAG}}
    assert v2.etag(entity, 'W/"something-else"') == ETAG
    assert v2.etag({}, ETAG) == ETAG and v2.etag({}, None) is None
    assert v2.etag({"__metadata": {"etag": "W/\"'0001'\""}}) == "W/\"'0001'\""


def test_numbers_compare_without_alpha_zeros() -> None:
    assert v2.normalise_number("000010") == "10"
    assert v2.normalise_number("0004000043") == v2.normalise_number("4000043") == "4000043"
    assert v2.normalise_number("000000") == "0"
    assert v2.normalise_number(" 20 ") == "20"
    assert v2.normalise_number("A010") == "A010"
    assert v2.normalise_number(None) == ""
