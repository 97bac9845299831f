"""erpsync: keeps an online store and an ERP in step (shared Lambda layer)."""

__version__ = "0.1.0"
