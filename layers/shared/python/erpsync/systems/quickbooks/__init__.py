"""QuickBooks Online Accounting API v3: client, mapping to the canonical model, ports, webhooks.

The client and adapter are imported when first named, not with the package: the webhook ingress
needs only ``webhooks`` and ``plugin``.
"""
