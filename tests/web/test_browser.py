"""The dashboard in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``) driven through selenium, against a real uvicorn server on a SQLite
database seeded by ``agentstore demo``. What the pages show is checked against the
store; the browser's console must stay free of errors. A screenshot of each page is
saved under the test's temporary directory (its path printed: ``pytest -s``)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from agentstore import AgentStore, AsyncAgentStore, ExecutionQuery
from agentstore.cli.demo import SCOPE
from agentstore.web import create_app

pytestmark = pytest.mark.slow
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT = 20  # seconds a page may take to appear; a bound, never a measure


def chromium() -> tuple[str, str]:
    """Chromium's and chromedriver's paths; a skip without them, a failure in CI."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = CHROMEDRIVER if os.access(CHROMEDRIVER, os.X_OK) else shutil.which("chromedriver")
    if browser and driver:
        return browser, driver
    reason = "Chromium and chromedriver (apt-get install chromium chromium-driver)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true needs {reason}, and they are missing")
    pytest.skip(f"needs {reason}")


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite database after one run of the demo."""
    url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'demo.db'}"
    demo = subprocess.run(
        [
            sys.executable,
            "-m",
            "agentstore",
            "--url",
            url,
            "demo",
            "--workers",
            "2",
            "--tasks",
            "8",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    return url


@pytest.fixture(scope="module")
def server(demo_url: str) -> Iterator[str]:
    """The dashboard served by uvicorn in a thread, on a port of its own."""
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    store = AsyncAgentStore.open(demo_url)
    app = create_app(store, poll_interval=0.1)  # SQLite cannot notify: the journal is polled
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1)
    served = uvicorn.Server(config)
    thread = threading.Thread(target=served.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    host, port = listening.getsockname()
    try:
        yield f"http://{host}:{port}"
    finally:
        served.should_exit = True
        thread.join(timeout=30)
        listening.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    binary, driver_path = chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(argument)
    options.add_argument("--window-size=1280,900")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    try:
        yield driver
    finally:
        driver.quit()


class Visit:
    """The pages one session saw: a screenshot of each, and the console's errors."""

    def __init__(self, driver: WebDriver, directory: Path) -> None:
        self.driver = driver
        self.directory = directory
        self.errors: list[dict[str, Any]] = []

    def wait_for(self, css: str) -> None:
        WebDriverWait(self.driver, WAIT).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, css), f"no {css} on the page"
        )

    def taken(self, name: str) -> Path:
        """A screenshot of the whole page, and the console's errors so far."""
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        # A window is no taller than the (virtual) screen: draw the page as if it were.
        metrics = {"width": 1280, "height": min(int(height), 4000), "deviceScaleFactor": 1}
        self.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride", {**metrics, "mobile": False}
        )
        path = self.directory / f"{name}.png"
        assert self.driver.save_screenshot(str(path))
        self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        print(f"screenshot of the {name} page: {path}")
        self.errors += [e for e in self.driver.get_log("browser") if e["level"] == "SEVERE"]
        return path

    def rows(self, table: str) -> list[str]:
        found = self.driver.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr[data-id]")
        return [row.get_attribute("data-id") or "" for row in found]


def d_url(driver: WebDriver) -> str:
    return str(driver.current_url)


def test_the_dashboard_shows_the_demo_as_the_store_has_it(
    server: str, browser: WebDriver, demo_url: str, tmp_path: Path
) -> None:
    visit = Visit(browser, tmp_path)
    with AgentStore.open(demo_url) as store:
        # The runs: one row per run, with its task counts.
        browser.get(server + "/")
        visit.wait_for("#runs")
        [run] = store.runs.list().items
        assert visit.rows("runs") == [str(run.id)]
        counts = store.tasks.counts([run.id])[run.id]
        chips = browser.find_elements(By.CSS_SELECTOR, "#runs .chip")
        shown = {c.get_attribute("data-status"): int(c.get_attribute("data-count")) for c in chips}
        assert shown == {status.value: n for status, n in counts.items() if n}
        visit.taken("runs")

        # Follow the run: its tasks by status and its journal.
        browser.find_element(By.CSS_SELECTOR, f"#runs tr[data-id='{run.id}'] a").click()
        visit.wait_for("#journal")
        assert d_url(browser).endswith(f"/runs/{run.id}")
        snapshot = store.runs.snapshot(run.id)
        groups = browser.find_elements(By.CSS_SELECTOR, "details.group")
        assert {g.get_attribute("data-status") for g in groups} == {
            status.value for status, tasks in snapshot.tasks.items() if tasks
        }
        assert visit.rows("journal")[: len(snapshot.recent_events)] == [
            str(event.id) for event in snapshot.recent_events
        ]
        # The journal follows live: an event written now appears as a row.
        WebDriverWait(browser, WAIT).until(lambda d: d.find_element(By.ID, "live").text == "live")
        note = store.events.add(run.id, "browser-test", "note", "<b>written while watched</b>")
        visit.wait_for(f"#journal tr[data-id='{note.id}']")
        row = browser.find_element(By.CSS_SELECTOR, f"#journal tr[data-id='{note.id}']")
        assert "<b>written while watched</b>" in row.text  # a literal, not markup
        visit.taken("run")

        # The executions of the demo's scope, picked from the scopes.
        browser.find_element(By.LINK_TEXT, "Executions").click()
        visit.wait_for("#scope-list")
        browser.find_element(By.LINK_TEXT, SCOPE).click()
        visit.wait_for("#executions")

        # Apply a status filter with the form: the URL carries it.
        browser.find_element(By.CSS_SELECTOR, "input[name=status][value=completed]").click()
        browser.find_element(By.ID, "apply").click()
        WebDriverWait(browser, WAIT).until(lambda d: "status=completed" in d_url(d))
        visit.wait_for("#executions")
        query = ExecutionQuery(statuses=["completed"])
        listing = store.executions.list(SCOPE, query)
        meta = store.executions.meta(SCOPE, query)
        assert listing.items and visit.rows("executions") == [str(e.id) for e in listing.items]
        facets = browser.find_elements(By.CSS_SELECTOR, "#facets a[data-facet=status]")
        assert {
            f.get_attribute("data-value"): int(f.get_attribute("data-count")) for f in facets
        } == meta.statuses
        bars = browser.find_elements(By.CSS_SELECTOR, "#chart rect.bar")
        drawn = sorted(
            (
                b.get_attribute("data-bucket"),
                b.get_attribute("data-status"),
                b.get_attribute("data-count"),
            )
            for b in bars
        )
        assert drawn == sorted(
            (bucket.start.isoformat(), status, str(count))
            for bucket in meta.chart
            for status, count in bucket.counts.items()
        )
        assert all(float(b.get_attribute("height") or 0) > 0 for b in bars)
        visit.taken("executions")

        # One execution: its tool calls on the timeline.
        first = listing.items[0]
        browser.find_element(By.CSS_SELECTOR, f"#executions tr[data-id='{first.id}'] a").click()
        visit.wait_for("#timeline")
        calls = store.executions.list_tool_calls(SCOPE, first.id)
        lanes = browser.find_elements(By.CSS_SELECTOR, "#timeline .lane")
        assert [lane.get_attribute("data-tool") for lane in lanes] == [c.tool_path for c in calls]
        assert re.search(r"\bcompleted\b", browser.find_element(By.TAG_NAME, "h1").text)
        visit.taken("execution")

    assert visit.errors == []
