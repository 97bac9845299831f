"""Lambda handler of every flow: SQS batches, the poll and sweep schedules, and sync-one-now.

One module serves them all: each flow's function (template.yaml, ``Fn::ForEach``) sets ``FLOW`` to
the flow's name in ``erpsync.flows.catalog``, read once when the module is imported.
"""

from __future__ import annotations

from erpsync.runtime.lambda_app import flow_handler_from_env

handler = flow_handler_from_env()
