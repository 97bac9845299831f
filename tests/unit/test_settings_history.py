"""Settings history: every change a numbered version with who, when, before and after; rollback;
unknown keys refused by name; two writers never lose each other's change."""

from __future__ import annotations

import json

import pytest

from erpsync.settings import Settings
from erpsync.state import dynamo
from erpsync.state.settings import UNSET, SettingsConflict, SettingsError, SettingsStore

DEFAULT_SHIPPING = Settings().shipping_methods


def test_each_change_is_a_version_with_who_when_before_and_after(bindings_table: str) -> None:
    store = SettingsStore(bindings_table)
    store.update({"tax_id": "STORETAX"}, actor="local:alice")
    store.update({"tax_id": "EUVAT", "shipping_methods": {"ups_GND": "UPSGROUND"}}, actor="arn:aws:iam::1:user/bob")
    second, first = SettingsStore(bindings_table).history()
    assert (first.version, first.actor, first.action) == (1, "local:alice", "set")
    assert (second.version, second.actor) == (2, "arn:aws:iam::1:user/bob")
    assert second.at.endswith("Z") and second.at >= first.at
    assert (second.before, second.after) == (
        {"tax_id": "STORETAX"},
        {"tax_id": "EUVAT", "shipping_methods": {**DEFAULT_SHIPPING, "ups_GND": "UPSGROUND"}},
    )
    assert second.patch == {"tax_id": "EUVAT", "shipping_methods": {"ups_GND": "UPSGROUND"}}
    changes = {c.key: (c.before, c.after) for c in second.changes()}
    assert changes == {"tax_id": ("STORETAX", "EUVAT"), "shipping_methods.ups_GND": (UNSET, "UPSGROUND")}
    assert [c.as_json() for c in first.changes()] == [{"key": "tax_id", "before": None, "after": "STORETAX"}]
    assert store.head()[0] == 2 and store.latest().version == 2


def test_setting_one_nested_key_keeps_its_siblings(bindings_table: str) -> None:
    store = SettingsStore(bindings_table)
    store.update({"rate_limits": {"acumatica": {"per_minute": 300, "concurrent": 4}}})
    store.update({"rate_limits": {"acumatica": {"per_minute": 200}}})
    limit = SettingsStore(bindings_table).load().rate_limits["acumatica"]
    assert (limit.per_minute, limit.concurrent) == (200, 4)
    assert [c.key for c in store.latest().changes()] == ["rate_limits.acumatica.per_minute"]


def test_a_change_that_changes_nothing_is_no_version(bindings_table: str) -> None:
    store = SettingsStore(bindings_table)
    store.update({"tax_id": "STORETAX"})
    store.update({"tax_id": "STORETAX"})
    assert store.version is None and len(store.history()) == 1


@pytest.mark.parametrize(
    ("patch", "named", "hint", "valid"),
    [
        ({"tax_idd": "X"}, "'tax_idd'", "did you mean 'tax_id'?", "valid top-level keys: batch_parallelism"),
        ({"order_sync": {"statuse": ["x"]}}, "'order_sync.statuse'", "'statuses'", "under 'order_sync': "),
        (
            {"rate_limits": {"acumatica": {"per_minut": 3}}},
            "'rate_limits.acumatica.per_minut'",
            "'per_minute'",
            "concurrent, per_minute",
        ),
        ({"zzz": 1}, "'zzz'", "", "tax_id"),
    ],
)
def test_an_unknown_key_is_refused_naming_close_matches_and_the_valid_keys(
    bindings_table: str, patch: dict[str, object], named: str, hint: str, valid: str
) -> None:
    store = SettingsStore(bindings_table)
    with pytest.raises(SettingsError) as err:
        store.update(patch)
    msg = str(err.value)
    assert "\n" not in msg and named in msg and hint in msg and valid in msg
    assert ("did you mean" in msg) == bool(hint)
    assert store.history() == []


def test_rollback_is_a_new_version_recording_who_and_to_what(bindings_table: str) -> None:
    store = SettingsStore(bindings_table)
    store.update({"tax_id": "A", "rate_limits": {"acumatica": {"per_minute": 300, "concurrent": 4}}})
    store.update({"tax_id": "B", "rate_limits": {"acumatica": None}})
    back = store.rollback(1, actor="local:carol")
    assert back is not None and (back.version, back.action, back.rolled_back_to, back.actor) == (
        3,
        "rollback",
        1,
        "local:carol",
    )
    fresh = SettingsStore(bindings_table).load()
    assert fresh.tax_id == "A" and fresh.rate_limits["acumatica"].concurrent == 4
    assert {c.key for c in back.changes()} == {
        "tax_id",
        "rate_limits.acumatica.per_minute",
        "rate_limits.acumatica.concurrent",
    }
    assert store.rollback(3) is None and store.head()[0] == 3  # already in force: nothing written


def test_unknown_versions_and_no_history_are_one_line(bindings_table: str) -> None:
    store = SettingsStore(bindings_table)
    with pytest.raises(SettingsError, match=r"^no settings changes recorded yet$"):
        store.latest()
    with pytest.raises(SettingsError, match=r"^no settings changes recorded yet$"):
        store.rollback(1)
    store.update({"tax_id": "A"})
    for bad in (0, 2, -1):
        with pytest.raises(SettingsError, match=f"^no settings version {bad}: the versions are 1 to 1$"):
            store.get(bad)


def test_a_save_from_a_stale_read_is_refused_and_update_tries_again(bindings_table: str) -> None:
    alice, bob = SettingsStore(bindings_table), SettingsStore(bindings_table)
    alice.update({"tax_id": "A"})
    stale = alice.head()
    bob.update({"default_carrier": "ups"})
    with pytest.raises(SettingsConflict):
        alice.save(alice.load().model_copy(update={"tax_id": "LOST"}), head=stale)
    assert SettingsStore(bindings_table).head()[0] == 2

    real_head = alice.head
    calls = []

    def racing_head() -> tuple[int, dict[str, object]]:
        got = real_head()
        if not calls:  # bob saves between alice's read and her write, once
            bob.update({"default_ship_via": "GROUND"})
        calls.append(got)
        return got

    alice.head = racing_head  # type: ignore[method-assign]
    alice.update({"tax_id": "C"})
    assert len(calls) == 2  # refused once, saved on the second try
    final = SettingsStore(bindings_table).load()
    assert (final.tax_id, final.default_carrier, final.default_ship_via) == ("C", "ups", "GROUND")
    assert [v.version for v in SettingsStore(bindings_table).history()] == [4, 3, 2, 1]


def test_history_written_before_versions_is_numbered_in_order(bindings_table: str) -> None:
    client = dynamo.client()
    docs = ['{"tax_id": "A"}', '{"tax_id": "B"}']
    for at, doc, patch in ((1700000000.5, docs[0], {"tax_id": "A"}), (1700000100.25, docs[1], {"tax_id": "B"})):
        client.put_item(
            TableName=bindings_table,
            Item=dynamo.to_item(
                {"pk": "settings#history", "sk": f"{at:.6f}", "actor": "cli", "patch": json.dumps(patch), "doc": doc}
            ),
        )
    client.put_item(TableName=bindings_table, Item=dynamo.to_item({"pk": "settings", "sk": "current", "doc": docs[1]}))
    store = SettingsStore(bindings_table)
    second, first = store.history()
    assert (first.version, first.at, first.before, first.after) == (1, "2023-11-14T22:13:20.500Z", {}, {"tax_id": "A"})
    assert (second.version, second.before, second.patch) == (2, {"tax_id": "A"}, {"tax_id": "B"})
    store.update({"tax_id": "C"}, actor="local:dan")
    assert [v.version for v in SettingsStore(bindings_table).history()] == [3, 2, 1]
    assert store.latest().before == {"tax_id": "B"}


def test_a_running_worker_sees_a_change_once_its_cache_of_cache_seconds_runs_out(
    bindings_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from erpsync.state import settings as module

    now = [1000.0]
    monkeypatch.setattr(module.time, "monotonic", lambda: now[0])
    worker = SettingsStore(bindings_table)
    assert worker.load().tax_id is None
    generation = worker.generation
    SettingsStore(bindings_table).update({"tax_id": "STORETAX"})
    now[0] += module.CACHE_SECONDS
    assert worker.load().tax_id is None and worker.generation == generation  # still cached
    now[0] += 1
    assert worker.load().tax_id == "STORETAX" and worker.generation == generation + 1
