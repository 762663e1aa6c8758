"""A real headless Chromium for the console tests: Debian's `chromium` driven by Selenium
through Debian's `chromedriver` (never Selenium Manager, which would download a driver),
and axe-core, the accessibility checker, injected into pages.

`scripts/test-deps.sh` (the first step of the README's test command) installs the browser
and axe-core; when they are missing these helpers fail with that instruction, never skip.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1280,900",
)  # fmt: skip
SERIOUS = ("serious", "critical")


def _cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(os.environ.get("FACEGATE_TEST_CACHE") or Path(base) / "facegate-tests")


def axe_source() -> str:
    path = _cache() / "node_modules" / "axe-core" / "axe.min.js"
    if not path.is_file():
        raise FileNotFoundError(
            f"axe-core not found at {path}: run scripts/test-deps.sh (the README's test command does)"
        )
    return path.read_text()


@contextmanager
def chromium() -> Iterator[webdriver.Chrome]:
    """A headless Chromium with a fresh profile, closed at the end of the block."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            raise FileNotFoundError(f"{path} missing: run scripts/test-deps.sh (the README's test command does)")
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never fetch anything
    with tempfile.TemporaryDirectory(prefix="facegate-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in (*FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
        driver.set_page_load_timeout(120)
        driver.set_script_timeout(120)
        try:
            yield driver
        finally:
            driver.quit()


def axe_violations(driver: webdriver.Chrome, source: str) -> list[dict[str, Any]]:
    """Serious and critical WCAG violations that axe-core finds on the current page."""
    driver.execute_script(source)
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']})"
        ".then(r => done(r.violations)).catch(e => done({error: String(e)}));"
    )
    if isinstance(result, dict):
        raise RuntimeError(f"axe-core failed: {result['error']}")
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result
        if v.get("impact") in SERIOUS
    ]


def screenshot(driver: webdriver.Chrome, path: Path) -> None:
    """The whole page as a PNG (the window grown to the page's height first)."""
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.set_window_size(1280, min(max(900, height + 40), 4000))
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))
    driver.set_window_size(1280, 900)


def _detached(element: WebElement) -> bool:
    """Whether `element` has left the document. Chromium reports a node of a page being
    replaced either as stale or, in a short window, as "does not belong to the document"
    (an inspector error, not StaleElementReferenceException): both mean it is gone."""
    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as exc:
        if "does not belong to the document" in str(exc):
            return True
        raise
    return False


def navigates(driver: webdriver.Chrome, act: Callable[[], object]) -> None:
    """Do `act` (a click, a key) and wait until the page it leads to has replaced this one."""
    old = driver.find_element(By.TAG_NAME, "html")
    act()
    WebDriverWait(driver, 120).until(lambda _d: _detached(old))
    WebDriverWait(driver, 120).until(lambda d: d.execute_script("return document.readyState") == "complete")
