"""`make demo`, the README's first command, runs to the end on the default pair (Magento and
Acumatica) and says every order reconciles: its story in a process of its own, as `make demo`
runs it (a demo that had stopped reconciling went unnoticed while `make test` passed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_runs_to_the_end_and_every_order_reconciles(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ERPSYNC_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "layers/shared/python"), str(ROOT)])
    env["COLUMNS"] = "200"
    run = subprocess.run(
        [sys.executable, "-m", "sandbox.demo", "--store", "magento", "--erp", "acumatica"],
        cwd=tmp_path,  # its state file (.erpsync/demo.json) lands here, not in the checkout
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-4000:]
    assert "All 24 orders reconcile" in out and "Does not reconcile" not in out, out[-4000:]
