"""The HTML page in a real browser: headless Chromium (Debian's chromium + chromium-driver,
driven by Selenium) with the network off. Tables sort and filter, every chart renders.

CI=1 makes a missing browser a failure, never a skip (tools/run_tests.sh installs it).
Set DDAI_SCREENSHOTS=DIR to keep screenshots of the page (docs/report_*.png were taken so).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from ddai.report.cli import main

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
# the flags a root session needs on this kind of machine, plus no network at all
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,1000",
         "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>"]


@pytest.fixture
def browser():
    missing = [p for p in (CHROMIUM, DRIVER) if not Path(p).exists()]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("selenium")
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"browser test needs {missing} (apt-get install chromium chromium-driver; pip install selenium)")
        pytest.skip(f"no {missing}")
    profile = tempfile.mkdtemp(prefix="ddai-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for f in FLAGS:
        opts.add_argument(f)
    opts.add_argument(f"--user-data-dir={profile}")
    drv = webdriver.Chrome(options=opts, service=Service(DRIVER))
    try:
        # the network is off for the page: offline emulation on top of the dead proxy
        drv.execute_cdp_cmd("Network.enable", {})
        drv.execute_cdp_cmd("Network.emulateNetworkConditions",
                            {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
        yield drv
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _wait(drv, script: str, timeout: float = 60):
    """Wait for a JS condition (an event of the page, not a timing margin)."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(drv, timeout).until(lambda d: d.execute_script(script))


def _column(drv, table_id: str, col: int) -> list[str]:
    return drv.execute_script(
        "return Array.from(document.getElementById(arguments[0]).tBodies[0].rows)"
        ".filter(r => r.style.display !== 'none').map(r => r.cells[arguments[1]].getAttribute('data-v')"
        " ?? r.cells[arguments[1]].textContent)", table_id, col)


def test_tables_sort_and_charts_render_offline(browser, hand_log, curriculum_dir, sweep_dir, tmp_path):
    from selenium.webdriver.common.by import By

    page = tmp_path / "report.html"
    assert main([str(hand_log), str(curriculum_dir), str(sweep_dir), "--html", str(page), "--deciles", "3"]) == 0
    browser.get(page.as_uri())
    _wait(browser, "return document.readyState === 'complete'")
    assert browser.execute_script("return typeof Plotly") == "object"     # the inlined plotly.js ran
    n_charts = browser.execute_script("return document.querySelectorAll('div.chart').length")
    assert n_charts >= 7
    # every chart drawn: plotly's SVG with at least one trace in it
    _wait(browser, "return Array.from(document.querySelectorAll('div.chart')).every(d => "
                   "d.classList.contains('js-plotly-plot') && d.querySelector('svg.main-svg') && "
                   "d.querySelectorAll('g.trace, .hm image, image').length > 0)")
    # no request left the page (everything inline): only the page itself was loaded
    urls = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert [u for u in urls if not u.startswith(("data:", "file:", "blob:"))] == []
    errors = [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"]
    assert errors == []

    # hover shows values; a legend click hides a series (the per-step chart: judge mean at step 2 = 0.65)
    chart = browser.execute_script(
        "return Array.from(document.querySelectorAll('div.chart')).find(d => d.data.some(t => t.name === 'judge mean')).id")
    browser.execute_script("Plotly.Fx.hover(arguments[0], [{curveNumber: 0, pointNumber: 1}])", chart)
    hover = _wait(browser, f"var h = document.getElementById('{chart}').querySelector('.hoverlayer');"
                           "return h && h.textContent.length ? h.textContent : null")
    assert "0.65" in hover and "judge mean" in hover
    browser.find_elements(By.CSS_SELECTOR, f"#{chart} g.legend g.traces")[0].click()
    assert _wait(browser, f"return document.getElementById('{chart}').data[0].visible === 'legendonly'")

    # sort the prompts table by rollouts: a click ascending, another descending
    tid = browser.execute_script("return document.querySelector('table[id^=\"t-prompts-\"]').id")
    head = browser.find_elements(By.CSS_SELECTOR, f"#{tid} thead th")
    rollouts = head[1]
    assert rollouts.text == "rollouts"
    rollouts.click()
    assert rollouts.get_attribute("aria-sort") == "ascending"
    assert [float(v) for v in _column(browser, tid, 1)] == [2.0, 4.0, 4.0]
    assert _column(browser, tid, 0)[0] == "train_3"
    rollouts.click()
    assert rollouts.get_attribute("aria-sort") == "descending"
    assert [float(v) for v in _column(browser, tid, 1)] == [4.0, 4.0, 2.0]
    head[0].click()                                                       # text column, natural order
    assert _column(browser, tid, 0) == ["train_1", "train_2", "train_3"]
    # judge: train_3 has judge 0.0, train_2 0.2, train_1 0.95
    head[2].click()
    assert _column(browser, tid, 0) == ["train_3", "train_2", "train_1"]

    # filter: typing keeps the matching rows
    box = browser.find_element(By.CSS_SELECTOR, f'input[data-filter="{tid}"]')
    box.send_keys("train_2")
    assert _column(browser, tid, 0) == ["train_2"]
    assert browser.find_element(By.ID, f"{tid}-count").text == "1 of 3 rows"

    # navigation: the bar stays on screen and its links lead to the sections
    browser.find_element(By.LINK_TEXT, "Quadrants").click()
    assert browser.execute_script("return location.hash") == "#quadrants"

    shots = os.environ.get("DDAI_SCREENSHOTS")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        browser.execute_script("window.scrollTo(0, 0)")
        browser.save_screenshot(str(Path(shots) / "page_top.png"))
