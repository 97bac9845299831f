"""Magento's error messages as an operator reads them: placeholders filled in, every problem of a
ValidationException named. The bodies are Magento's shapes: ``{"message", "parameters"}`` with
``%1`` or ``%name`` placeholders (webapi exceptions), the price APIs' failure list with named
placeholders and a list of values (PriceUpdateResultInterface), and MSI's 400 ``Validation
Failed`` with one entry per problem in ``errors`` (Magento\\Framework\\Validation\\ValidationException)."""

from __future__ import annotations

from erpsync.systems.magento.client import render_message


def test_positional_and_named_parameters_are_filled_in() -> None:
    assert (
        render_message(
            {
                "message": "No such entity with %fieldName = %fieldValue",
                "parameters": {"fieldName": "sku", "fieldValue": "X1"},
            },
            "?",
        )
        == "No such entity with sku = X1"
    )
    assert (
        render_message({"message": "The %1 of %2 is wrong", "parameters": ["price", "X1"]}, "?")
        == "The price of X1 is wrong"
    )


def test_a_price_failure_names_its_values_in_the_order_the_placeholders_appear() -> None:
    failure = {
        "message": "Invalid attribute Price = %price. Row ID: SKU = %SKU, Store ID: %storeId.",
        "parameters": ["-1", "MT01", "0"],
    }
    assert render_message(failure, "?") == "Invalid attribute Price = -1. Row ID: SKU = MT01, Store ID: 0."
    repeated = {
        "message": "Invalid attribute SKU = %SKU. Row ID: SKU = %SKU, Store ID: %storeId.",
        "parameters": ["MT01", "0"],
    }
    assert render_message(repeated, "?") == "Invalid attribute SKU = MT01. Row ID: SKU = MT01, Store ID: 0."
    short = {"message": "Row ID: SKU = %SKU, Store ID: %storeId.", "parameters": ["MT01"]}  # too few values: as sent
    assert render_message(short, "?") == "Row ID: SKU = %SKU, Store ID: %storeId."


def test_a_validation_failure_names_every_problem() -> None:
    body = {
        "message": "Validation Failed",
        "errors": [
            {"message": 'Product with SKU "%sku" does not exist.', "parameters": {"sku": "GHOST"}},
            {"message": 'Source with code "%value" is not found.', "parameters": {"value": "eu-1"}},
        ],
    }
    assert render_message(body, "?") == (
        'Validation Failed: Product with SKU "GHOST" does not exist.; Source with code "eu-1" is not found.'
    )
    many = {"message": "Validation Failed", "errors": [{"message": f"problem {i}"} for i in range(8)]}
    assert render_message(many, "?").endswith("problem 4 (and 3 more)")


def test_a_body_that_is_not_magento_s_gives_the_fallback() -> None:
    assert render_message(["not", "a", "message"], "502 Bad Gateway") == "502 Bad Gateway"
    assert render_message({"error": "x"}, "fallback") == "fallback"
