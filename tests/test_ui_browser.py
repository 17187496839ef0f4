"""The app in a real browser: `ui_command` serves it, headless Chromium loads every page.

Each page must render its headline content with no Streamlit exception box; a screenshot of
each is kept under artifacts/screenshots/. A second test watches a run write the store while
the page is open: it fills in by itself, with no lock error.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers.wait import wait_until

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None,
                       reason="headless Chromium is not installed: apt-get install chromium "
                              "chromium-driver (.ci/run does)"),
]

PAGES = {  # url path -> what the page must show
    "": ["Overview", "Success rate", "56% ± 11%", "Outcomes: models x tasks", "alpha", "gamma"],
    "runs": ["Runs", "36 episodes match · showing 36", "Sort by"],
    "trace": ["Trace explorer", "Conversation", "Step 0", "Final answer:"],
    "sql": ["SQL console", "Views", "token_events", "Pick an example or write a query"],
    "compare": ["Compare", "Outcomes and paired differences", "Where trajectories part",
                "alpha · react-text", "beta · react-text", "First divergence at step 1"],
    "shards": ["Shards", "No ablation episodes here yet", "shardscope ablate --db"],
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def serve() -> Iterator[Callable[[Path], str]]:
    """Start `ui_command` (as `shardscope ui` does) on a store; returns the printed URL."""
    started: list[subprocess.Popen] = []

    def start(db: Path) -> str:
        port = _free_port()
        code = ("import sys; from pathlib import Path; from shardscope.commands.ui import ui_command; "
                f"sys.exit(ui_command(Path({str(db)!r}), None, {port}, False))")
        proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        started.append(proc)
        assert proc.stdout is not None
        lines = [proc.stdout.readline(), proc.stdout.readline()]
        url = f"http://127.0.0.1:{port}"
        assert f"URL: {url}" in lines[1], lines
        def healthy() -> bool:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                    if reply.read() == b"ok":
                        return True
            except OSError:
                pass
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            return False

        wait_until(healthy, f"the app at {url} to answer its health check", interval=0.25)
        return url

    yield start
    for proc in started:
        proc.terminate()  # ui_command stops its streamlit server on SIGTERM
        proc.wait(20)


@pytest.fixture
def browser(tmp_path: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--window-size=1400,1800", f"--user-data-dir={tmp_path / 'chrome'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _text(driver) -> str:
    """The page's visible text, whitespace collapsed (wrapped lines, metric layout)."""
    return " ".join(driver.execute_script("return document.body.innerText").split())


def _settled(driver, expected: list[str], timeout: float = 180) -> str:
    """Page text once every expected string is there, the script has stopped running and
    the text stayed the same for half a second."""
    seen: list[str] = []

    def settled() -> str | None:
        text = _text(driver)
        running = driver.execute_script(
            "return !!document.querySelector('[data-testid=\"stStatusWidget\"]')")
        stable = bool(seen) and text == seen[-1]
        seen.append(text)
        return text if all(e in text for e in expected) and not running and stable else None

    def missing() -> str:
        text = seen[-1] if seen else ""
        return f"the page to settle; missing {[e for e in expected if e not in text]}:\n{text}"

    return wait_until(settled, missing, timeout=timeout, interval=0.5)


def _charts_drawn(driver) -> int:
    return driver.execute_script(
        "return document.querySelectorAll('[data-testid=\"stVegaLiteChart\"] canvas, "
        "[data-testid=\"stVegaLiteChart\"] svg').length")


def _exceptions(driver) -> list[str]:
    return driver.execute_script(
        "return [...document.querySelectorAll('[data-testid=\"stException\"]')].map(e => e.innerText)")


def test_every_page_renders_in_chromium(fixture_store: Path, serve, browser) -> None:
    url = serve(fixture_store)
    SHOTS.mkdir(parents=True, exist_ok=True)
    for path, expected in PAGES.items():
        browser.get(f"{url}/{path}")
        text = _settled(browser, expected)
        if path == "":  # the screenshot waits for the overview's six charts to draw
            wait_until(lambda: _charts_drawn(browser) >= 6, "the overview's six charts to draw")
        browser.save_screenshot(str(SHOTS / f"{path or 'overview'}.png"))
        assert _exceptions(browser) == [], path
        assert "Traceback" not in text and "Page not found" not in text, path
        assert str(fixture_store) in text.replace(" ", "")  # the sidebar names the store


@pytest.mark.slow
def test_page_fills_in_while_a_run_writes(tmp_path: Path, serve, browser) -> None:
    db = tmp_path / "live.duckdb"
    url = serve(db)
    browser.get(url)
    _settled(browser, ["No store at", "shardscope demo --db"])
    go = tmp_path / "go"
    writer = subprocess.Popen(
        [sys.executable, "-m", "tests.helpers.toy_run", "--db", str(db), "--tasks", "8",
         "--seeds", "2", "--delay", "0.5", "--hold", str(go)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None and writer.stdout.readline().startswith("episode ")
        # No episode finishes until `go` exists: the live refresh, not the run's end, redraws it.
        _settled(browser, ["Success rate", "toy-a"], timeout=120)
        assert writer.poll() is None and "Episodes 32" not in _text(browser)
        go.touch()
        assert writer.wait(300) == 0, writer.stderr.read() if writer.stderr else ""
        text = _settled(browser, ["Episodes 32", "finished — 32 / 32 episodes"], timeout=120)
        SHOTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(SHOTS / "live.png"))
        assert _exceptions(browser) == [] and "lock" not in text.lower()
    finally:
        if writer.poll() is None:
            writer.kill()
