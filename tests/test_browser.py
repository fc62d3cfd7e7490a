"""The Observatory page in a real browser: headless Chromium logs in to Airflow, opens the page
from the navigation and finds the 23 member states; the screenshot is kept as a test artifact.

Chromium is Debian's package (`/usr/bin/chromium`, installed by `.ci/run`); Playwright's Python
package drives it through `executable_path`, no browser is downloaded. Without Chromium the test
is skipped, except in CI (`CI` set), where that is a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from transforms.config import REPO_ROOT
from transforms.contracts import codelists

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = REPO_ROOT / "test-artifacts" / "observatory.png"

if not CHROMIUM.exists() and not os.environ.get("CI"):
    pytest.skip(
        f"{CHROMIUM} is missing (apt-get install -y chromium; .ci/run installs it)", allow_module_level=True
    )


def test_an_engineer_logs_in_and_finds_every_member_state_on_the_observatory_page(airflow_server):
    from omh_airflow_server import PASSWORD
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), "CI installs Debian's chromium (.ci/run)"
    members = codelists.members()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1200})
            page.set_default_timeout(60_000)
            page.goto(airflow_server.url + "/")
            page.wait_for_url("**/auth/login**")  # not logged in: Airflow's login page
            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(lambda url: "/auth/login" not in url)

            # The plugin's entry in the navigation bar opens the page inside the Airflow UI.
            page.get_by_role("link", name="Observatory").first.click()
            page.wait_for_url("**/plugin/observatory**")
            frame = page.frame_locator("iframe").first
            rows = frame.locator("tr.country")
            rows.first.wait_for()
            assert rows.count() == 23
            shown = {rows.nth(i).get_attribute("data-iso3") for i in range(rows.count())}
            assert shown == {m["iso3"] for m in members}
            grid = frame.locator("table#completeness").inner_text()
            for member in members:
                assert member["name_es"] in grid, member
            assert frame.locator("td.cell").count() == 23 * frame.locator("th.m").count()
            assert "Atlantis" in frame.locator("table#unmapped").inner_text()  # the refused file's label
            assert "pan_darien_yearly" in frame.locator("table#validations").inner_text()
            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)

            # Airflow's iframe is sandboxed without top navigation: a click must still lead there.
            observatory = page.url
            cell = frame.locator("td.cell[data-href^='/dags/']").first
            target = cell.get_attribute("data-href")
            cell.click()
            page.wait_for_url(f"**{target}**")
            assert page.url.endswith(target) and "/plugin/observatory" not in page.url

            page.goto(observatory)
            frame = page.frame_locator("iframe").first
            report = frame.locator("table#validations a", has_text="report").first
            href = report.get_attribute("href")
            report.click()
            page.wait_for_url(f"**/observatory/{href}")
            assert "pan_darien_yearly" in page.content() or "cri_dgme" in page.content()
            page.screenshot(path=str(SCREENSHOT.with_name("observatory-report.png")), full_page=True)
        finally:
            browser.close()
    assert SCREENSHOT.stat().st_size > 10_000
