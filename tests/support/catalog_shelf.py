"""The catalog flows between an ERP's sim and a store's sim, in-process, as the catalog tests of each
ERP drive them: ``catalog_rules`` wires the flows' rules as the runtime wires a lane (only the
ports each system serves); ``MagentoShelf`` runs a poll of a flow and reads the Magento sim back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.testclient import TestClient

from erpsync.errors import PermanentError
from erpsync.flows import catalog
from erpsync.flows.sync import FlowContext
from erpsync.settings import Settings
from erpsync.state.bindings import Bindings
from erpsync.systems.plugin import SOURCE, TARGET, Plugin

BEGINNING = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Side:
    """One end of a lane: its connection name, its connected system and its plugin."""

    name: str
    system: Any
    plugin: Plugin


def catalog_rules(source: Side, target: Side, bindings: Bindings, settings: Settings) -> dict[str, Any]:
    """Flow name -> the rules of each catalog flow ``source`` serves as a source and ``target`` as a
    target, with the neighbouring ports the flow needs."""
    out: dict[str, Any] = {}
    for spec in catalog.FLOWS:
        if spec.group != "catalog" or not (
            source.plugin.can(spec.entity, SOURCE) and target.plugin.can(spec.entity, TARGET)
        ):
            continue
        extra: dict[tuple[str, str], Any] = {}
        for entity in spec.needs:
            if source.plugin.can(entity, SOURCE):
                extra[(entity, SOURCE)] = source.system.port(entity, SOURCE)
            if target.plugin.can(entity, TARGET):
                extra[(entity, TARGET)] = target.system.port(entity, TARGET)
        ctx = FlowContext(
            spec=spec,
            source=source.name,
            target=target.name,
            source_port=source.system.port(spec.entity, SOURCE),
            target_port=target.system.port(spec.entity, TARGET),
            bindings=bindings,
            settings=settings,
            extra=extra,
        )
        out[spec.name] = spec.load_rules()(ctx)
    return out


def magento_writes(mhttp: TestClient) -> list[str]:
    """The writes the Magento sim logged since its log was last cleared (token requests left out)."""
    rows = mhttp.get("/_sim/requests").json()["requests"]
    return [
        f"{r['method']} {r['path']}"
        for r in rows
        if r["method"] in ("POST", "PUT", "DELETE") and "token" not in r["path"]
    ]


class MagentoShelf:
    """A poll of a catalog flow synced, and the Magento sim (``mhttp``) read back."""

    rules: dict[str, Any]
    mhttp: TestClient

    def sync(self, flow: str, since: datetime = BEGINNING) -> dict[str, Any]:
        """One poll of ``flow`` and every notice synced: notice id -> its result (or error)."""
        rules = self.rules[flow]
        notices = [n for page in rules.ctx.source_port.changes(since) for n in page.notices]
        if hasattr(rules, "sync_many"):
            return dict(zip([n.id for n in notices], rules.sync_many(notices), strict=True)) if notices else {}
        out: dict[str, Any] = {}
        for n in notices:
            try:
                out[n.id] = rules.sync(n)
            except PermanentError as exc:
                out[n.id] = exc
        return out

    def mag(self, method: str, path: str) -> Any:
        token = self.mhttp.post(
            "/rest/V1/integration/admin/token", json={"username": "admin", "password": "admin123"}
        ).json()
        r = self.mhttp.request(method, "/rest/all" + path, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code < 300, f"{method} {path}: {r.status_code} {r.text[:300]}"
        return r.json()

    def magento_qty(self, sku: str) -> float:
        items = self.mag(
            "GET",
            "/V1/inventory/source-items?searchCriteria[filter_groups][0][filters][0][field]=sku"
            f"&searchCriteria[filter_groups][0][filters][0][value]={sku}",
        )["items"]
        return float(items[0]["quantity"])

    def writes(self) -> list[str]:
        """What erpsync wrote to Magento since the last ``clear``."""
        return magento_writes(self.mhttp)

    def clear(self) -> None:
        self.mhttp.delete("/_sim/requests")
