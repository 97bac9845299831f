"""Which plugin serves which system kind. The runtime reaches a system only through here; a
system's package is imported only when a connection of its kind is used.

``KINDS`` is the one list of system kinds (the template's ``AllowedValues`` are checked against
it). Credentials come from Secrets Manager (cached by Powertools Parameters for five minutes).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from erpsync.systems.plugin import Plugin

KINDS: dict[str, str] = {
    "magento": "erpsync.systems.magento.plugin",
    "acumatica": "erpsync.systems.acumatica.plugin",
    "shopify": "erpsync.systems.shopify.plugin",
    "quickbooks": "erpsync.systems.quickbooks.plugin",
    "sap_b1": "erpsync.systems.sap_b1.plugin",
    "sap_s4": "erpsync.systems.sap_s4.plugin",
}
WEBHOOKS: dict[str, str] = {
    "magento": "erpsync.systems.magento.webhooks",
    "acumatica": "erpsync.systems.acumatica.webhooks",
    "shopify": "erpsync.systems.shopify.webhooks",
    "quickbooks": "erpsync.systems.quickbooks.webhooks",
    "sap_b1": "erpsync.systems.sap_b1.webhooks",
}
"""The kinds whose plugin takes webhooks, and the module whose ``receive(secret, body, headers)``
verifies and parses one into the fields of its notices. The plugin's ``webhooks`` is that parse
with ``ChangeNotice`` models; the webhook ingress calls ``receive`` (``webhook_receiver``) and so
needs neither the record models nor the plugin's settings models, which its cold start would pay for."""
Receiver = Callable[[Any, bytes, dict[str, str]], list[dict[str, Any]]]
SECRET_MAX_AGE_S = 300


class UnknownSystem(ValueError):
    pass


def plugin(kind: str) -> Plugin:
    """The plugin of ``kind``; ``UnknownSystem`` names the kinds there are."""
    if kind not in KINDS:
        raise UnknownSystem(f"no system {kind!r} (systems with an adapter: {', '.join(KINDS)})")
    from erpsync.systems.plugin import Plugin

    found = importlib.import_module(KINDS[kind]).PLUGIN
    assert isinstance(found, Plugin)
    return found


def webhook_receiver(kind: str) -> Receiver | None:
    """What verifies and parses a webhook of ``kind`` into notice fields (None: the kind sends no
    webhooks, as its plugin's ``webhooks`` says); ``UnknownSystem`` as ``plugin``."""
    if kind not in KINDS:
        raise UnknownSystem(f"no system {kind!r} (systems with an adapter: {', '.join(KINDS)})")
    where = WEBHOOKS.get(kind)
    if where is None:
        return None
    receive: Receiver = importlib.import_module(where).receive
    return receive


def save_secret(name: str, document: dict[str, Any]) -> None:
    """Store ``document`` as the secret ``name``'s new value (renewed OAuth tokens); the next
    ``secret(name)`` reads it."""
    import json

    import boto3

    boto3.client("secretsmanager").put_secret_value(SecretId=name, SecretString=json.dumps(document))
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()


def secret(name: str, *, force: bool = False) -> dict[str, Any]:
    """The JSON secret ``name`` (``force``: skip the cache, e.g. after a 401)."""
    from aws_lambda_powertools.utilities import parameters
    from aws_lambda_powertools.utilities.parameters.base import DEFAULT_PROVIDERS

    if "secrets" not in DEFAULT_PROVIDERS:
        # Powertools would make a boto3 session of its own (botocore's endpoints read a second time
        # on a cold start); the process's default session, which the DynamoDB and SQS clients use, does
        import boto3

        DEFAULT_PROVIDERS["secrets"] = parameters.SecretsProvider(boto3_client=boto3.client("secretsmanager"))
    value = parameters.get_secret(name, transform="json", max_age=SECRET_MAX_AGE_S, force_fetch=force)
    if not isinstance(value, dict):
        raise ValueError(f"secret {name} is not a JSON object")
    return value
