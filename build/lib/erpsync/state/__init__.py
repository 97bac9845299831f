"""DynamoDB state: bindings (ID cross-references), cursors, settings, leases, and the sync log."""
