"""Lambda handler of the shipments flow: SQS batches, the poll schedule, and sync-one-now."""

from __future__ import annotations

from erpsync.runtime.lambda_app import flow_handler

handler = flow_handler("shipments")
