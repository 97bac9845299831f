"""The stored settings document as plain JSON, without the models (``erpsync.settings``).

What the webhook ingress needs from the settings is the connections in force (which kind and role
each connection id has); importing and building the settings models is
work its first request does not need. ``effective_connections`` reads them straight from
the document, and says when the document is not plainly valid (the caller then validates it with
the models, which name what is wrong). ``migrate`` and ``merge`` live here for the same reason;
``erpsync.settings`` re-exports them.
"""

from __future__ import annotations

import os
from typing import Any

VERSION = 2
LEGACY_ERP_FIELDS = ("customer_class", "customer_id_prefix", "order_type", "warehouse_id")
"""Settings of version 1 that now belong to the Acumatica connection's own settings."""
CONNECTION_FIELDS = frozenset({"kind", "role", "secret", "settings"})
"""The fields of ``erpsync.settings.Connection``."""
ROLES = ("store", "erp")


def merge(base: Any, patch: Any) -> Any:
    """JSON merge patch (RFC 7396): nested maps merge, ``null`` deletes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    out = dict(base) if isinstance(base, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge(out.get(key), value)
    return out


def migrate(doc: dict[str, Any]) -> dict[str, Any]:
    """A stored settings document of any version, as the current version reads it.

    Version 1 (no ``version``) kept the Acumatica settings at the top level: they move into the
    ERP connection's settings (connection id: the deployment's ERP kind).
    """
    if int(doc.get("version", 1)) >= VERSION:
        return doc
    out = {k: v for k, v in doc.items() if k not in LEGACY_ERP_FIELDS}
    moved = {k: doc[k] for k in LEGACY_ERP_FIELDS if k in doc}
    if moved:
        erp = os.environ.get("ERP_SYSTEM", "acumatica")
        conns = dict(out.get("connections") or {})
        conn = dict(conns.get(erp) or {"kind": erp, "role": "erp"})
        conn["settings"] = {**moved, **(conn.get("settings") or {})}
        conns[erp] = conn
        out["connections"] = conns
    out["version"] = VERSION
    return out


def default_connections() -> dict[str, dict[str, Any]]:
    """The deployment's own store and ERP, from the template's parameters (ids = kinds)."""
    store = os.environ.get("STORE_SYSTEM", "magento")
    erp = os.environ.get("ERP_SYSTEM", "acumatica")
    return {
        store: {
            "kind": store,
            "role": "store",
            "secret": os.environ.get("STORE_SECRET_NAME", f"erpsync/{store}"),
            "settings": {},
        },
        erp: {
            "kind": erp,
            "role": "erp",
            "secret": os.environ.get("ERP_SECRET_NAME", f"erpsync/{erp}"),
            "settings": {},
        },
    }


def _plain_connection(conn: Any) -> dict[str, Any] | None:
    """A stored connection with every field of ``Connection`` (defaults filled in), or None when
    the models might see it differently (anything but plain, valid JSON of the right types)."""
    if not isinstance(conn, dict) or not set(conn) <= CONNECTION_FIELDS:
        return None
    kind, role, secret, own = conn.get("kind"), conn.get("role"), conn.get("secret", ""), conn.get("settings", {})
    if type(kind) is not str or type(role) is not str or role not in ROLES:
        return None
    if type(secret) is not str or type(own) is not dict or not all(type(k) is str for k in own):
        return None
    return {"kind": kind, "role": role, "secret": secret, "settings": own}


def effective_connections(doc: Any) -> dict[str, dict[str, Any]] | None:
    """The connections in force under a (migrated) settings document, as
    ``erpsync.settings.Settings.effective_connections`` gives them (as plain dicts, in the same
    order): those stored, over the deployment's own two. None when the document or one of its
    connections is not plainly valid: validate it with the models then."""
    if not isinstance(doc, dict):
        return None
    stored = doc.get("connections", {})
    if type(stored) is not dict:
        return None
    found = default_connections()
    for cid, raw in stored.items():
        conn = _plain_connection(raw)
        if conn is None:
            return None
        base = found.get(cid)
        found[cid] = conn if base is None else {**conn, "secret": conn["secret"] or base["secret"]}
    return found
