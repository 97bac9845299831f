"""`erpsync sim` (one simulator alone) and the `--connect` values of `erpsync local up`."""

from __future__ import annotations

import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from cli.main import app
from sandbox.local.net import port_accepts, wait_port_closed
from sandbox.local.stack import connect_credentials, default_seed, parse_connect

ROOT = Path(__file__).resolve().parents[2]


def test_connect_values_become_system_urls() -> None:
    got = parse_connect(["acumatica=https://erp.example.com/AcumaticaERP/", "Magento = http://127.0.0.1:8081"])
    assert got == {"acumatica": "https://erp.example.com/AcumaticaERP", "magento": "http://127.0.0.1:8081"}
    assert parse_connect([]) == {}


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("acumatica", "expected <system>=<url>"),
        ("woocommerce=https://shop.example.com", "unknown system 'woocommerce'"),
        ("acumatica=localhost:8082", "is not a URL"),
        ("acumatica=ftp://erp.example.com", "is not a URL"),
        ("acumatica=http://erp:port", "is not a URL"),
        ("acumatica=", "is not a URL"),
    ],
)
def test_a_bad_connect_value_is_refused_naming_the_problem(value: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_connect([value])


def test_a_system_connected_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="magento given twice"):
        parse_connect(["magento=http://a", "magento=http://b"])


def test_connected_credentials_come_from_the_environment_else_the_sim_defaults() -> None:
    env = {"ERPSYNC_ACUMATICA_PASSWORD": "s3cret", "ERPSYNC_ACUMATICA_COMPANY": "Acme", "ERPSYNC_MAGENTO_USERNAME": "x"}
    acu = connect_credentials("acumatica", "https://erp.example.com", env)
    assert acu == {
        "base_url": "https://erp.example.com",
        "endpoint": "Default/24.200.001",
        "username": "admin",
        "password": "s3cret",
        "company": "Acme",
        "branch": "",
    }
    assert connect_credentials("magento", "http://shop", {})["base_url"] == "http://shop/rest/default"
    assert connect_credentials("magento", "http://shop/rest/all", env) == {
        "base_url": "http://shop/rest/all",
        "username": "x",
        "password": "admin123",
    }


def _one_line_error(args: list[str], code: int) -> str:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == code, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output
    return lines[0]


def test_local_up_refuses_a_bad_connect_in_one_line() -> None:
    assert "unknown system 'nope'" in _one_line_error(["local", "up", "--connect", "nope=http://x"], 2)
    assert "expected <system>=<url>" in _one_line_error(["local", "up", "--connect", "magento"], 2)


def test_sim_refuses_an_unknown_system_and_a_busy_port() -> None:
    assert "no simulator 'erp'" in _one_line_error(["sim", "erp"], 2)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        line = _one_line_error(["sim", "magento", "--port", str(port)], 1)
    assert f"cannot listen on 127.0.0.1:{port}" in line and "in use" in line


def _read_until(lines: queue.Queue[str], marker: str, timeout: float = 30) -> list[str]:
    got: list[str] = []
    deadline = time.monotonic() + timeout
    while not any(marker in line for line in got):
        try:
            got.append(lines.get(timeout=max(0.0, deadline - time.monotonic())).rstrip("\n"))
        except queue.Empty:
            raise AssertionError(f"no {marker!r} in {got}") from None
    return got


def test_sim_prints_the_url_and_credentials_it_accepts_seeds_and_stops_on_ctrl_c() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "sim", "acumatica", "--port", "0", "--seed"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [out.put(line) for line in proc.stdout or ()], daemon=True)
    reader.start()
    try:
        lines = _read_until(out, "Ctrl-C stops it.")
        url = lines[0].split(": ", 1)[1]
        fields = dict(line.split(None, 1) for line in lines[1:] if line.startswith("  "))
        seeded = len(default_seed()["acumatica"]["stock_items"])
        assert fields["base_url"] == url and f"seeded: {seeded} stock_items" in lines
        assert f"use it: erpsync local up --connect acumatica={url}" in lines
        login = {"name": fields["username"], "password": fields["password"], "company": fields["company"]}
        with httpx.Client(base_url=url) as http:
            assert http.post("/entity/auth/login", json=login).status_code == 204
            items = http.get(f"/entity/{fields['endpoint']}/StockItem").json()
        assert len(items) == seeded
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
        assert _read_until(out, "stopped", timeout=5)
        port = int(url.rsplit(":", 1)[1])
        assert wait_port_closed("127.0.0.1", port) and not port_accepts("127.0.0.1", port)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(5)
        if proc.stdout is not None:
            proc.stdout.close()
