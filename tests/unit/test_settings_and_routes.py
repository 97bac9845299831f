"""Settings merge as a patch, old documents migrate, and a pairing no adapter serves refuses to start."""

from __future__ import annotations

import pytest

from erpsync.flows import catalog
from erpsync.runtime.lambda_app import ConfigurationError, check_routes
from erpsync.settings import Settings, merge, migrate
from erpsync.state.settings import SettingsStore


def test_settings_set_merges_nested_maps_and_null_removes() -> None:
    base = Settings().model_dump(mode="json")
    patched = Settings.model_validate(merge(base, {"shipping_methods": {"ups_GND": "UPSGROUND", "free": None}}))
    assert patched.shipping_methods["ups_GND"] == "UPSGROUND"
    assert patched.shipping_methods["flatrate_flatrate"] == "FLATRATE"  # the defaults stay


def test_a_version_1_document_moves_erp_fields_into_the_erp_connection() -> None:
    doc = migrate({"order_type": "WO", "warehouse_id": "MAIN", "tax_id": "STORETAX"})
    s = Settings.model_validate(doc)
    assert s.tax_id == "STORETAX" and s.version == 2
    conn = s.effective_connections()["acumatica"]
    assert conn.settings == {"order_type": "WO", "warehouse_id": "MAIN"}
    assert conn.secret == "erpsync/acumatica"  # the deployment's secret is kept


def test_stored_old_settings_load_migrated_and_history_is_kept(bindings_table: str) -> None:
    from erpsync.state import dynamo

    dynamo.client().put_item(
        TableName=bindings_table,
        Item=dynamo.to_item({"pk": "settings", "sk": "current", "doc": '{"order_type": "WO", "tax_id": "T"}'}),
    )
    store = SettingsStore(bindings_table)
    assert store.load().effective_connections()["acumatica"].settings["order_type"] == "WO"
    store.update({"payment_methods": {"stripe": "CARD"}}, actor="ops@example.com")
    again = SettingsStore(bindings_table).load()
    assert again.payment_methods["stripe"] == "CARD" and again.payment_methods["checkmo"] == "CHECK"
    assert again.effective_connections()["acumatica"].settings["order_type"] == "WO"
    [last, *_] = store.history()
    assert last.actor == "ops@example.com" and last.patch == {"payment_methods": {"stripe": "CARD"}}


def test_default_routes_pair_the_deployments_two_connections() -> None:
    lanes = check_routes(catalog.get("customers"), Settings())
    assert [(s, t) for s, t, _ in lanes] == [("magento", "acumatica")]
    back = check_routes(catalog.get("erp-customers"), Settings())
    assert [(s, t) for s, t, _ in back] == [("acumatica", "magento")]


def test_the_catalog_runs_only_where_a_route_names_it() -> None:
    assert check_routes(catalog.get("products"), Settings()) == []  # "*" leaves the catalog out
    on = Settings.model_validate({"routes": [{"store": "magento", "erp": "acumatica", "flows": ["*", "catalog"]}]})
    for flow in ("attributes", "categories", "products", "prices", "stock"):
        assert [(s, t) for s, t, _ in check_routes(catalog.get(flow), on)] == [("acumatica", "magento")]
    assert [(s, t) for s, t, _ in check_routes(catalog.get("orders"), on)] == [("magento", "acumatica")]
    one = Settings.model_validate({"routes": [{"store": "magento", "erp": "acumatica", "flows": ["stock"]}]})
    assert check_routes(catalog.get("stock"), one) and not check_routes(catalog.get("prices"), one)


def test_a_pairing_with_no_adapter_refuses_to_start_naming_it() -> None:
    settings = Settings.model_validate(
        {
            "connections": {"sap": {"kind": "sap", "role": "erp", "secret": "erpsync/sap"}},
            "routes": [{"store": "magento", "erp": "sap"}],
        }
    )
    with pytest.raises(ConfigurationError) as err:
        check_routes(catalog.get("orders"), settings)
    assert "no system 'sap'" in str(err.value) and "magento, acumatica" in str(err.value)


def test_a_route_naming_a_flow_its_system_cannot_serve_refuses() -> None:
    settings = Settings.model_validate({"routes": [{"store": "magento", "erp": "acumatica", "flows": ["orders"]}]})
    assert check_routes(catalog.get("customers"), settings) == []  # not routed: no lane, no error
    wrong_role = Settings.model_validate(
        {
            "connections": {"shop2": {"kind": "acumatica", "role": "store", "secret": "x"}},
            "routes": [{"store": "shop2", "erp": "acumatica"}],
        }
    )
    with pytest.raises(ConfigurationError) as err:
        check_routes(catalog.get("orders"), wrong_role)
    assert "shop2" in str(err.value) and "cannot be the store" in str(err.value)


def test_two_websites_feed_one_erp_with_their_own_overrides() -> None:
    settings = Settings.model_validate(
        {
            "connections": {"magento-eu": {"kind": "magento", "role": "store", "secret": "erpsync/magento-eu"}},
            "routes": [
                {"store": "magento", "erp": "acumatica"},
                {"store": "magento-eu", "erp": "acumatica", "overrides": {"tax_id": "EUVAT"}},
            ],
        }
    )
    lanes = check_routes(catalog.get("orders"), settings)
    assert [(s, t) for s, t, _ in lanes] == [("magento", "acumatica"), ("magento-eu", "acumatica")]
    assert settings.for_route(lanes[1][2]).tax_id == "EUVAT" and settings.for_route(lanes[0][2]).tax_id is None


def test_settings_no_system_could_run_are_refused_and_not_saved(bindings_table: str) -> None:
    from erpsync.runtime.lambda_app import check_settings

    store = SettingsStore(bindings_table)
    store.update({"tax_id": "STORETAX"})
    with pytest.raises(ConfigurationError) as err:
        store.update(
            {"connections": {"acumatica": {"kind": "acumatica", "role": "erp", "settings": {"order_typ": "SO"}}}},
            check=check_settings,
        )
    assert "order_typ" in str(err.value) and "acumatica" in str(err.value)
    with pytest.raises(ConfigurationError) as err:
        store.update({"routes": [{"store": "magento", "erp": "qbo", "flows": ["orders"]}]}, check=check_settings)
    assert "'qbo'" in str(err.value)
    fresh = SettingsStore(bindings_table).load()
    assert fresh.tax_id == "STORETAX" and not fresh.routes and not fresh.connections
