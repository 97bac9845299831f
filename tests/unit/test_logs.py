"""Personal data is masked in logs."""

from __future__ import annotations

import logging

import pytest

from erpsync.runtime.logs import MaskingFilter, mask


@pytest.mark.parametrize(
    ("raw", "hidden", "kept"),
    [
        ("customer jdoe@example.com not found", "jdoe@", "j***@example.com"),
        ('{"telephone": "512-555-1111", "city": "Purchase"}', "512-555", '"city": "Purchase"'),
        ('{"street": ["123 Oak Ave"], "postcode": "10577"}', "Oak Ave", '"postcode": "10577"'),
        ("call +1 (555) 229-3326 now", "229-3326", "***26"),
    ],
)
def test_personal_data_is_masked(raw: str, hidden: str, kept: str) -> None:
    out = mask(raw)
    assert hidden not in out
    assert kept in out


def test_order_numbers_and_amounts_are_not_mistaken_for_phones() -> None:
    text = "order 000000003 total 165.00 at 2017-08-21 22:22:20"
    assert mask(text) == text


def test_filter_masks_formatted_records(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("erpsync.test.masking")
    caplog.handler.addFilter(MaskingFilter())
    with caplog.at_level(logging.INFO, logger="erpsync.test.masking"):
        logger.info("customer %s", "jane.doe@example.com")
    assert "jane.doe" not in caplog.text and "j***@example.com" in caplog.text


def test_json_lines_carry_extras_and_mask_them() -> None:
    import json

    from erpsync.runtime.logs import JsonFormatter

    record = logging.LogRecord("erpsync.worker", logging.INFO, "x", 1, "order %s failed for %s", ("42", "a@b.co"), None)
    record.flow, record.outcome = "orders", "failed"
    record.note = "ask jane@example.com"
    doc = json.loads(JsonFormatter().format(record))
    assert doc["level"] == "INFO" and doc["flow"] == "orders" and doc["outcome"] == "failed"
    assert "a***@b.co" in doc["message"] and doc["note"] == "ask j***@example.com"
