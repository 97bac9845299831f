"""The operator console in a real headless Chromium (Debian's chromium and chromium-driver, driven by
Selenium) against the local stack: `erpsync console` loads, shows failed orders with their reason,
one is retried from the console after its cause is fixed and one from the CLI, two are skipped with
a note, and each order that went through is in Acumatica once. Chromium that cannot start fails the
test (CI must prove the console works in a browser)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from erpsync.state.failures import Failure, FailuresDesk
from sandbox.story import AcumaticaUser, MagentoAdmin, Story

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
EVIL = "<script>window.pwned=1</script> [/b] reason quoting markup"


def _env(state: Path) -> dict[str, str]:
    path = os.pathsep.join([str(ROOT / "layers/shared/python"), str(ROOT), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "ERPSYNC_LOCAL_FILE": str(state), "PYTHONPATH": path}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], Path]]:
    from cli.target import use_local
    from sandbox.local.stack import LocalStack

    state = tmp_path_factory.mktemp("console") / "local.json"
    with LocalStack(state_file=state, run_pollers=False, run_schedules=False) as s:
        use_local(state)
        from erpsync.state.settings import SettingsStore

        SettingsStore(os.environ["BINDINGS_TABLE"]).update({"tax_id": "STORETAX"})
        yield s.info, state


@pytest.fixture(scope="module")
def story(stack: tuple[dict[str, Any], Path]) -> Iterator[Story]:
    info = stack[0]
    s = Story(magento=MagentoAdmin(**info["magento"]), acumatica=AcumaticaUser(**info["acumatica"]))
    s.seed_catalog()
    yield s
    s.magento.close()
    s.acumatica.close()


@pytest.fixture(scope="module")
def console(stack: tuple[dict[str, Any], Path]) -> Iterator[str]:
    """`erpsync console` in its own process, on a free loopback port; its base URL."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "console", "--port", str(port)],
        cwd=ROOT,
        env=_env(stack[1]),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"erpsync console exited with {proc.returncode}: {proc.stdout.read() if proc.stdout else ''}"
                )
            try:
                if httpx.get(f"{base}/static/console.css", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("erpsync console did not answer within 60 s")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if proc.stdout:
            proc.stdout.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium through chromedriver; the test fails (does not skip) when it cannot start."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(p)]
    if missing:
        pytest.fail(
            f"{' and '.join(missing)} not found: the console's browser test needs Debian's chromium and "
            "chromium-driver (`apt-get install -y chromium chromium-driver`; `make test` installs them as root)"
        )
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,1000",
    ):
        options.add_argument(arg)
    try:
        driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    except WebDriverException as exc:
        pytest.fail(f"headless Chromium could not start through {CHROMEDRIVER}: {exc.msg or exc}")
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()


def failing_orders(story: Story, sku: str, product_id: int, count: int) -> list[dict[str, Any]]:
    """Magento orders of a product Acumatica has no stock item for."""
    from sandbox.sims import magento_orders as mo

    odd = {**mo.sample_catalog()[8], "sku": sku, "name": f"Band {sku}", "id": product_id}
    # its own url key (Magento's is unique per store): the sim derives one from the new name
    odd["custom_attributes"] = [a for a in odd.get("custom_attributes") or [] if a["attribute_code"] != "url_key"]
    story.magento.call("POST", "/products", json={"product": odd})
    made = []
    for customer in story.seed_customers(count):
        order = mo.build_order([*story.catalog, odd], [mo.CartLine(sku, 1)], customer=customer)
        made.append(dict(story.magento.call("POST", "/orders", json={"entity": order})))
    return made


def test_find_a_failed_order_fix_it_and_retry_it_from_the_console_and_the_cli(
    story: Story, stack: tuple[dict[str, Any], Path], console: str, browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    from erpsync.runtime.lambda_app import build

    a, b = failing_orders(story, "24-UG01", 9001, 2)
    [c] = failing_orders(story, "24-UG02", 9002, 1)
    rt = build("orders")
    rt.poll()
    assert [o.outcome for o in rt.drain()].count("failed") == 3
    FailuresDesk(os.environ["BINDINGS_TABLE"]).record(
        Failure(
            "orders", "magento", "evil-1", entity="order", target="acumatica", error_type="unknown_item", reason=EVIL
        )
    )
    key = {o["entity_id"]: f"orders#magento#{o['entity_id']}" for o in (a, b, c)}

    def rows() -> dict[str, str]:
        return {r.get_attribute("data-key"): r.text for r in browser.find_elements(By.CSS_SELECTOR, "tr[data-key]")}

    def go(element: Any) -> None:
        """Click a link or form button and wait until the page it leads to (after any redirect) has replaced
        this one: Selenium's click can return before the navigation starts, and a look at once reads the old page."""
        from selenium.webdriver.support import expected_conditions as ec
        from selenium.webdriver.support.ui import WebDriverWait

        old = browser.find_element(By.TAG_NAME, "html")
        element.click()
        WebDriverWait(browser, 120).until(ec.staleness_of(old))
        WebDriverWait(browser, 120).until(lambda d: d.execute_script("return document.readyState") == "complete")

    def click(text: str) -> None:
        go(browser.find_element(By.XPATH, f"//button[normalize-space()='{text}']"))

    def tick(*keys: str) -> None:
        for k in keys:
            browser.find_element(By.CSS_SELECTOR, f"input[name=key][value='{k}']").click()

    # the overview: charts per flow, four open failures of orders
    browser.get(console + "/")
    assert browser.title.startswith("Overview")
    orders_row = browser.find_element(By.CSS_SELECTOR, "tr[data-flow=orders]")
    assert len(orders_row.find_elements(By.TAG_NAME, "svg")) == 2
    assert orders_row.find_elements(By.TAG_NAME, "td")[-1].text == "4"
    assert browser.find_element(By.ID, "queues").is_displayed()

    # the failures desk: each failed order with why; markup in a reason is text
    go(browser.find_element(By.LINK_TEXT, "Failures"))
    assert browser.title.startswith("Failures")
    listed = rows()
    assert set(listed) == {*key.values(), "orders#magento#evil-1"}
    assert "unknown_item" in listed[key[a["entity_id"]]] and "24-UG01" in listed[key[a["entity_id"]]]
    assert "<script>window.pwned=1</script> [/b]" in listed["orders#magento#evil-1"]
    assert browser.execute_script("return window.pwned === undefined")

    # one record's history: the failed attempt, nothing on the Acumatica side yet
    go(browser.find_element(By.LINK_TEXT, str(a["entity_id"])))
    assert "has no record on acumatica yet" in browser.find_element(By.ID, "binding").text
    assert "failed" in browser.find_element(By.ID, "history").text
    browser.back()

    # fix the cause (the missing stock item), then retry one order from the console
    story.acumatica.put("StockItem", {"InventoryID": {"value": "24-UG01"}, "Description": {"value": "Band"}})
    tick(key[a["entity_id"]])
    click("Retry selected")
    assert "retry orders: synced 1" in browser.find_element(By.CLASS_NAME, "msg").text
    assert key[a["entity_id"]] not in rows() and key[b["entity_id"]] in rows()

    # and the other from the CLI
    cli = subprocess.run(
        [sys.executable, "-m", "cli", "retry", "orders", str(b["entity_id"]), "--yes"],
        cwd=ROOT,
        env=_env(stack[1]),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr
    browser.refresh()
    assert set(rows()) == {key[c["entity_id"]], "orders#magento#evil-1"}

    # skip in bulk: refused without a note, done with one
    tick(key[c["entity_id"]], "orders#magento#evil-1")
    click("Skip selected")
    assert "a skip needs a note" in browser.find_element(By.CLASS_NAME, "err").text
    tick(key[c["entity_id"]], "orders#magento#evil-1")
    browser.find_element(By.NAME, "note").send_keys("cancelled with the customer")
    click("Skip selected")
    assert "skip orders: 2 skipped" in browser.find_element(By.CLASS_NAME, "msg").text
    assert rows() == {} and browser.find_element(By.ID, "count").text == "0 open failures."
    assert "cancelled with the customer" in browser.find_element(By.ID, "resolved").text

    # each retried order is in Acumatica once, the skipped one not at all; the record shows both sides
    for o in (a, b):
        assert len(story.acumatica.orders_for(str(o["increment_id"]))) == 1
    assert story.acumatica.orders_for(str(c["increment_id"])) == []
    browser.get(f"{console}/record?flow=orders&id={a['entity_id']}")
    assert " is acumatica " in browser.find_element(By.ID, "binding").text
    assert "synced" in browser.find_element(By.ID, "history").text

    go(browser.find_element(By.LINK_TEXT, "Overview"))
    assert (
        browser.find_element(By.CSS_SELECTOR, "tr[data-flow=orders]").find_elements(By.TAG_NAME, "td")[-1].text == "0"
    )
    go(browser.find_element(By.LINK_TEXT, "Settings"))
    assert "STORETAX" in browser.find_element(By.ID, "current").text
    assert "Version 1 is in force" in browser.find_element(By.TAG_NAME, "main").text
