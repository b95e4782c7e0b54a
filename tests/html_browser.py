"""A real headless Chromium for the HTML tests: Debian's chromium and chromium-driver, driven
by selenium. Without them every browser test skips with one line saying how to get them."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
HOW = (
    "they need Debian's chromium and chromium-driver: run make test as root (it installs "
    "them), or apt-get install -y chromium chromium-driver"
)


def have_browser() -> bool:
    return os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not have_browser():  # conftest sets the browser tests aside first; this is a backstop
        pytest.skip(f"browser tests skipped: {HOW}")
    os.environ.setdefault("SE_AVOID_STATS", "true")  # selenium: no usage statistics
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1200,900",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
    ):
        options.add_argument(arg)
    # every request a page makes is in the performance log (Network.requestWillBeSent)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_script_timeout(300)
    try:
        yield driver
    finally:
        driver.quit()


def requests_made(driver: Any) -> list[str]:
    """The URLs of the requests the page made since the last call (the log is drained)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def open_page(driver: Any, path: Path) -> list[str]:
    """Load a file and return the requests its loading made (the page itself included)."""
    requests_made(driver)  # drain what came before
    driver.get(path.resolve().as_uri())
    driver.execute_script("return document.readyState")
    return requests_made(driver)


def foreign(urls: list[str], page: Path) -> list[str]:
    """The requests that are neither the page itself nor inline data."""
    own = page.resolve().as_uri()
    return [u for u in urls if u != own and not u.startswith("data:")]
