"""The dashboard in a real browser: `streamlit run` on a free port, each page in headless Chromium.

Screenshots go to $LOGLENS_ARTIFACTS/dashboard (or the test's temp dir). A page passes when it shows
no exception, draws its charts (Plotly SVG present) or tables, and its screenshot is not blank.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, free_port, stop, wait_until_up
from PIL import Image, ImageStat

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
STARTUP_SECS = 90  # upper bounds for a loaded CI machine, not speed assertions
PAGE_SECS = 120

# Page URL path -> (minimum Plotly charts, minimum tables) the page must draw on the fixture data.
PAGES = {
    "": (9, 2),  # overview is the default page, at the root
    "anomalies": (1, 2),
    "templates": (0, 2),
    "explorer": (0, 1),
    "alerts": (1, 1),
    "pipeline": (1, 2),
}


def _browser_missing() -> str | None:
    if not Path(CHROMIUM).exists() or not Path(CHROMEDRIVER).exists():
        return (
            "chromium and chromedriver not installed (apt-get install -y chromium chromium-driver)"
        )
    try:
        import selenium  # noqa: F401, PLC0415
    except ImportError:
        return "selenium not installed (pip install -r python/requirements-dev.txt)"
    return None


pytestmark = pytest.mark.skipif(_browser_missing() is not None, reason=str(_browser_missing()))


@pytest.fixture(scope="module")
def server(dashboard_data, tmp_path_factory):
    """`streamlit run dashboard/app.py -- --data-dir DIR`, as `loglens dashboard` starts it."""
    port = free_port()
    log = tmp_path_factory.mktemp("streamlit") / "streamlit.log"
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(REPO / "dashboard" / "app.py"),
        "--server.headless", "true", "--server.port", str(port),
        "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
        "--", "--data-dir", str(dashboard_data),
    ]  # fmt: skip
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
        try:
            wait_until_up(proc, f"http://127.0.0.1:{port}/_stcore/health", STARTUP_SECS)
            yield f"http://127.0.0.1:{port}"
        finally:
            stop(proc)


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver  # noqa: PLC0415
    from selenium.webdriver.chrome.service import Service  # noqa: PLC0415

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1800"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(options=opts, service=Service(CHROMEDRIVER))
    yield driver
    driver.quit()


def _settled(driver) -> bool:
    """The page title is drawn and Streamlit is no longer running the script."""
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    return bool(
        driver.find_elements(By.CSS_SELECTOR, "h1")
        and not driver.find_elements(By.CSS_SELECTOR, "[data-testid='stSkeleton']")
        and not driver.find_elements(By.CSS_SELECTOR, "[data-testid='stStatusWidget']")
    )


def _artifacts(tmp_path: Path) -> Path:
    root = os.environ.get("LOGLENS_ARTIFACTS")
    out = (Path(root) if root else tmp_path) / "dashboard"
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.mark.parametrize("path", list(PAGES))
def test_page_renders_in_chromium(server, browser, path, tmp_path):
    from selenium.webdriver.common.by import By  # noqa: PLC0415
    from selenium.webdriver.support.ui import WebDriverWait  # noqa: PLC0415

    browser.get(f"{server}/{path}")
    WebDriverWait(browser, PAGE_SECS, poll_frequency=0.5).until(_settled)
    min_charts, min_tables = PAGES[path]
    WebDriverWait(browser, PAGE_SECS, poll_frequency=0.5).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .main-svg")) >= min_charts
    )
    shot = _artifacts(tmp_path) / f"{path or 'overview'}.png"
    browser.save_screenshot(str(shot))

    assert not browser.find_elements(By.CSS_SELECTOR, "[data-testid='stException']")
    assert not browser.find_elements(By.CSS_SELECTOR, "[role='dialog']"), (
        "a dialog (page not found?)"
    )
    tables = browser.find_elements(By.CSS_SELECTOR, "[data-testid='stDataFrame']")
    assert len(tables) >= min_tables
    image = Image.open(shot).convert("L")
    assert image.size[0] >= 1000
    # A blank or skeleton-only page is nearly one grey; a drawn page has text, bars and lines.
    assert ImageStat.Stat(image).stddev[0] > 8, f"{shot} looks blank"
