"""Which plugin serves which system kind. The runtime reaches a system only through here; a
system's package is imported only when a connection of its kind is used.

``KINDS`` is the one list of system kinds (the template's ``AllowedValues`` are checked against
it). Credentials come from Secrets Manager (cached by Powertools Parameters for five minutes).
"""

from __future__ import annotations

import importlib
from typing import Any

from erpsync.systems.plugin import Plugin

KINDS: dict[str, str] = {
    "magento": "erpsync.systems.magento.plugin",
    "acumatica": "erpsync.systems.acumatica.plugin",
}
SECRET_MAX_AGE_S = 300


class UnknownSystem(ValueError):
    pass


def plugin(kind: str) -> Plugin:
    """The plugin of ``kind``; ``UnknownSystem`` names the kinds there are."""
    if kind not in KINDS:
        raise UnknownSystem(f"no system {kind!r} (systems with an adapter: {', '.join(KINDS)})")
    found = importlib.import_module(KINDS[kind]).PLUGIN
    assert isinstance(found, Plugin)
    return found


def secret(name: str, *, force: bool = False) -> dict[str, Any]:
    """The JSON secret ``name`` (``force``: skip the cache, e.g. after a 401)."""
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_secret(name, transform="json", max_age=SECRET_MAX_AGE_S, force_fetch=force)
    if not isinstance(value, dict):
        raise ValueError(f"secret {name} is not a JSON object")
    return value
