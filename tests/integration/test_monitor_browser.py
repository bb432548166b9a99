"""The monitor page in a real headless Chromium, fed by the real demo (simulator → daemon → monitor).

Chromium and chromedriver are Debian's packages (``scripts/install-browser.sh``, run by
``make test`` and CI). Where they are missing the test skips with the reason — except under
CI or ``RTD_TEST_REQUIRE_BROWSER=1`` (``make test`` sets it), where it fails instead.
A screenshot is kept as a test artefact: ``out/test-artefacts/monitor.png``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.faultkit import PY, ROOT

ARTEFACTS = ROOT / "out" / "test-artefacts"
#: Chromium flags: headless, no sandbox (root in CI), and nothing that calls Google's hosts.
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--disable-default-apps", "--window-size=1400,1000")


def _need(what: str) -> None:
    msg = f"{what} is not installed (run scripts/install-browser.sh, or `make test`, which does)"
    if os.environ.get("CI") or os.environ.get("RTD_TEST_REQUIRE_BROWSER") == "1":
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture
def browser(tmp_path: Path):  # noqa: ANN201
    """A headless Chromium driven by Debian's chromedriver, with a fresh profile."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ModuleNotFoundError:
        _need("selenium")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        _need("chromium / chromium-driver")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        opts.add_argument(flag)
    d = webdriver.Chrome(service=Service(driver), options=opts)  # an explicit driver: no download
    try:
        yield d
    finally:
        d.quit()


def _monitor_url(demo: subprocess.Popen, timeout_s: float = 60.0) -> str:
    end = time.monotonic() + timeout_s
    assert demo.stdout is not None
    while time.monotonic() < end:
        line = demo.stdout.readline()
        if "live monitor: http://127.0.0.1:" in line:
            return line.split("live monitor: ")[1].split()[0]
        if not line and demo.poll() is not None:
            break
    raise AssertionError("the demo did not print the monitor's address")


def _wait(driver, cond: str, timeout_s: float):  # noqa: ANN001, ANN202
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        v = driver.execute_script(f"return {cond}")
        if v:
            return v
        time.sleep(0.25)
    stats = driver.execute_script("return window.rtdMonitor && window.rtdMonitor.stats()")
    raise AssertionError(f"page never satisfied {cond!r}: {stats}")


def test_monitor_page_shows_live_changing_values_from_the_demo(browser, tmp_path: Path) -> None:  # noqa: ANN001
    pytest.importorskip("aiohttp")
    demo = subprocess.Popen(PY[:3] + ["--log-level", "WARNING", "demo", "--seconds", "12", "--quiet",
                                      "--monitor-port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        url = _monitor_url(demo)
        browser.get(url)
        _wait(browser, "document.getElementById('conn').textContent === 'live'", 30)
        # live estimates of the demo's decoder, with the simulator's true kinematics beside them
        _wait(browser, "window.rtdMonitor.stats().topics.cortex > 50", 90)
        _wait(browser, "window.rtdMonitor.stats().truth > 100", 30)
        stats = browser.execute_script("return window.rtdMonitor.stats()")
        assert stats["outputs"]["cortex"] == ["vx", "vy"] and "vx" in stats["truthNames"]
        value = "document.querySelector('.value[data-topic=\"cortex\"][data-output=\"vx\"]').textContent"
        first = browser.execute_script(f"return {value}")
        u0 = stats["updates"]
        changed = _wait(browser, f"({value}) !== {first!r} && window.rtdMonitor.stats().updates > {u0 + 5}"
                                 f" && {value}", 20)
        assert changed != first and float(changed) == float(changed)  # a new, numeric value
        assert "running" in browser.execute_script("return document.getElementById('state').textContent")
        stages = browser.execute_script(
            "return [...document.querySelectorAll('#stages tbody tr td:first-child')]"
            ".map(e => e.textContent)")
        assert "model:cortex" in stages and "tick" in stages
        time.sleep(1.0)  # let one more frame draw before the picture
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTEFACTS / "monitor.png"
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 20000
        demo.wait(120)
        assert demo.returncode == 0, demo.stdout.read() if demo.stdout else ""
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGTERM)
            demo.wait(10)
