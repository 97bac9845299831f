"""`erpsync local down` stops the stack `erpsync local up` runs in another terminal: cleanly (its
ports closed, its state file no longer naming a running process), and says so plainly when there
is nothing to stop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from sandbox.local.net import port_accepts

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "layers/shared/python"), str(ROOT)])}
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_local_down_stops_the_stack_local_up_started(tmp_path: Path) -> None:
    state = tmp_path / "local.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "layers/shared/python"), str(ROOT)])}
    up = subprocess.Popen(
        [sys.executable, "-m", "cli", "local", "up", "--state-file", str(state), "--no-seed"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not (state.exists() and "pid" in json.loads(state.read_text() or "{}")):
            assert up.poll() is None, f"erpsync local up exited with {up.returncode}"
            assert time.monotonic() < deadline, "erpsync local up did not start within 120 s"
            time.sleep(0.3)
        info = json.loads(state.read_text())
        assert info["pid"] == up.pid
        api = urlsplit(info["api_url"])
        assert port_accepts(api.hostname or "127.0.0.1", api.port or 80)

        down = _cli("local", "down", "--state-file", str(state))
        assert down.returncode == 0, down.stderr
        assert down.stdout.strip() == f"stopped the local stack (process {up.pid})"
        assert up.wait(30) == 0
        assert not port_accepts(api.hostname or "127.0.0.1", api.port or 80)
        assert "pid" not in json.loads(state.read_text())

        again = _cli("local", "down", "--state-file", str(state))
        assert again.returncode == 1 and again.stderr.strip().startswith("no local stack is running from")
    finally:
        if up.poll() is None:
            up.kill()
            up.wait(10)


def test_local_down_without_a_state_file_says_there_is_no_stack(tmp_path: Path) -> None:
    out = _cli("local", "down", "--state-file", str(tmp_path / "nothing.json"))
    assert out.returncode == 1
    assert out.stderr.strip() == (
        f"no local stack: {tmp_path / 'nothing.json'} does not exist (start one with `erpsync local up`)"
    )
