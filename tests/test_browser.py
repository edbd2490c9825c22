"""Real browser: log in with Chromium and see the role's overview with real KPIs."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import PASSWORD, USERS, make_app

pytestmark = pytest.mark.browser
SCREENSHOTS = Path(os.environ.get("DASHBOARD_SCREENSHOTS") or Path(tempfile.gettempdir()) / "dashboard-screenshots")


def _serve(dash_thread_server, tmp_path, warehouse_url: str, port: int) -> str:
    """The app on the fixture warehouse, served by a threaded server on ``port``; its base URL."""
    app = make_app(tmp_path, warehouse_url)
    dash_thread_server(app.extensions["dashboard"].dash_app, port=port)
    return f"http://localhost:{port}"


def _login(driver, base: str, who: str) -> None:
    driver.get(f"{base}/login")
    driver.find_element(By.ID, "email").send_keys(USERS[who][0])
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login-button").click()


def _bookmark(driver, base: str, path: str) -> WebDriverWait:
    """Log in as the practice manager, wait for the landing page, then open a bookmarked ``path``."""
    _login(driver, base, "practice")
    wait = WebDriverWait(driver, 30)
    wait.until(EC.presence_of_element_located((By.ID, "kpi-days-in-ar")))
    driver.get(f"{base}{path}")
    return wait


def test_practice_manager_logs_in_and_sees_kpis(browser_ready, dash_thread_server, dash_br, tmp_path,
                                               fixture_warehouse_url):
    base = _serve(dash_thread_server, tmp_path, fixture_warehouse_url, 8061)
    driver = dash_br.driver
    driver.get(f"{base}/practice")
    assert "/login" in driver.current_url  # no session: sent to log in
    _login(driver, base, "practice")
    wait = WebDriverWait(driver, 30)
    wait.until(EC.presence_of_element_located((By.ID, "kpi-days-in-ar")))
    wait.until(EC.presence_of_element_located((By.ID, "grid-practice-kpis")))
    # the grids ask the server for their first block (infinite row model): rows appear, none is empty; the
    # practice shows by its name (its TIN on hover)
    for grid in ("grid-practice-kpis", "grid-ar-aging", "grid-remittances"):
        wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, f"#{grid} .ag-center-cols-container"),
                                                    "Fixture Family Medicine"))
    text = driver.find_element(By.ID, "practice-content").text.upper()
    assert "DAYS IN A/R" in text
    assert "NET COLLECTION RATE" in text
    assert driver.find_element(By.ID, "nav-user").text.startswith("pm@test.example")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SCREENSHOTS / "practice.png"))
    # the employer page is not theirs: the layout answers with "no access", never data
    driver.get(f"{base}/employer")
    wait.until(EC.presence_of_element_located((By.ID, "no-access")))
    logs = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"
            and "favicon" not in entry["message"]]
    assert not logs, logs


def test_wrong_password_shows_message(browser_ready, dash_thread_server, dash_br, tmp_path, fixture_warehouse_url):
    app = make_app(tmp_path, fixture_warehouse_url)
    dash_thread_server(app.extensions["dashboard"].dash_app, port=8062)
    driver = dash_br.driver
    driver.get("http://localhost:8062/login")
    driver.find_element(By.ID, "email").send_keys(USERS["employer"][0])
    driver.find_element(By.ID, "password").send_keys("wrong password entirely")
    driver.find_element(By.ID, "login-button").click()
    WebDriverWait(driver, 15).until(EC.presence_of_element_located((By.ID, "login-error")))
    assert "Invalid email or password" in driver.find_element(By.ID, "login-error").text


def test_a_bookmarked_practice_url_opens_with_its_filters_and_keeps_them(browser_ready, dash_thread_server, dash_br,
                                                                         tmp_path, fixture_warehouse_url):
    """Issue 12 item 2: /practice?from=…&to=…&practice=… opens with those filters; changing one rewrites the
    address bar, so reloading it gives the same view."""
    base = _serve(dash_thread_server, tmp_path, fixture_warehouse_url, 8063)
    driver = dash_br.driver
    wait = _bookmark(driver, base, "/practice?from=2026-01&to=2026-02&practice=111111111")
    wait.until(EC.text_to_be_present_in_element((By.ID, "practice-cards"), "at end of 2026-02"))
    assert driver.find_element(By.ID, "practice-from").text.strip().startswith("2026-01")
    # pick another end month: the URL follows without a reload
    driver.find_element(By.ID, "practice-to").click()
    wait.until(EC.element_to_be_clickable((By.XPATH, "//*[@role='option'][normalize-space()='2026-03']"))).click()
    wait.until(lambda d: "to=2026-03" in d.current_url)
    assert "from=2026-01" in driver.current_url
    assert "practice=111111111" in driver.current_url
    driver.refresh()
    wait.until(EC.text_to_be_present_in_element((By.ID, "practice-cards"), "at end of 2026-03"))


def test_the_navbar_folds_behind_a_menu_button_on_a_phone(browser_ready, dash_thread_server, dash_br, tmp_path,
                                                         fixture_warehouse_url):
    """Issue 12 item 10: at 400 px the navbar's links are hidden until the menu button opens them."""
    base = _serve(dash_thread_server, tmp_path, fixture_warehouse_url, 8064)
    driver = dash_br.driver
    _login(driver, base, "employer")
    driver.set_window_size(400, 900)
    try:
        driver.get(f"{base}/employer")
        wait = WebDriverWait(driver, 30)
        toggle = wait.until(EC.visibility_of_element_located((By.ID, "nav-toggle")))
        assert not driver.find_element(By.ID, "nav-user").is_displayed()
        toggle.click()
        wait.until(EC.visibility_of_element_located((By.ID, "nav-user")))
        assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(SCREENSHOTS / "employer-400-menu.png"))
    finally:
        driver.set_window_size(1400, 1000)


def test_from_a_bookmarked_kpi_to_its_claims_and_a_claims_timeline(browser_ready, dash_thread_server, dash_br,
                                                                   tmp_path, fixture_warehouse_url):
    """Issue 12, done when: a practice manager opens the page from a bookmarked URL with filters, clicks the denial
    rate card through to its claims, opens a claim and sees its timeline and CARC meanings; a claim id of
    another practice answers like an unknown one."""
    base = _serve(dash_thread_server, tmp_path, fixture_warehouse_url, 8065)
    driver = dash_br.driver
    wait = _bookmark(driver, base, "/practice?from=2026-01&to=2026-03&practice=111111111")
    link = wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, "#kpi-denial-rate-\\(claims\\) a.claims-link")))
    link.click()
    wait.until(lambda d: "/reports?report=first-denials" in d.current_url)
    assert "from=2026-01" in driver.current_url
    assert "practice=111111111" in driver.current_url
    # the claims behind the rate: C2, C3 and C7, denied on their first 835, each claim id a link
    wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, "#grid-report .ag-center-cols-container"), "C7"))
    grid = driver.find_element(By.ID, "grid-report").text
    assert "CO-97" in grid
    driver.find_element(By.XPATH, "//div[@id='grid-report']//a[normalize-space()='C2']").click()
    wait.until(EC.presence_of_element_located((By.ID, "claim-timeline")))
    assert driver.find_element(By.ID, "claim-title").text == "Claim C2"
    timeline = driver.find_element(By.ID, "claim-timeline").text
    assert "rejected by the clearinghouse (277CA)" in timeline
    assert "CO-16 missing or invalid claim information" in timeline
    assert "appeal sent" in timeline
    assert "submit a new claim" in driver.find_element(By.ID, "claim-page").text  # remark MA130 in words
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SCREENSHOTS / "claim.png"))
    # another practice's claim and a claim that does not exist read alike
    driver.get(f"{base}/practice/claims/D1")
    theirs = wait.until(EC.presence_of_element_located((By.ID, "no-access"))).text
    driver.get(f"{base}/practice/claims/NO-SUCH-CLAIM")
    wait.until(EC.presence_of_element_located((By.ID, "no-access")))
    assert theirs == driver.find_element(By.ID, "no-access").text == "unknown claim"
    logs = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"
            and "favicon" not in entry["message"]]
    assert not logs, logs


def _privacy_app(dash_thread_server, tmp_path, port: int) -> str:
    """The app over the three-employer privacy fixture (GRPA large enough to show numbers, small cells elsewhere),
    with an employer admin of GRPA; its base URL."""
    from dashboard.auth import service
    from dashboard.warehouse.engine import create_schema, writer_engine
    from tests.fixtures import load_privacy_fixture

    url = f"duckdb:///{tmp_path / 'privacy.duckdb'}"
    engine = writer_engine(url)
    create_schema(engine)
    load_privacy_fixture(engine)
    engine.dispose()
    app = make_app(tmp_path, url)
    service.create_user(app.extensions["dashboard"].app_db, email="a@grp.example", password=PASSWORD,
                        role="employer_admin", employers=("GRPA",), actor="test")
    dash_thread_server(app.extensions["dashboard"].dash_app, port=port)
    return f"http://localhost:{port}"


def test_an_employer_admin_compares_builds_saves_and_reopens_a_report(browser_ready, dash_thread_server, dash_br,
                                                                      tmp_path):
    """Issue 13, done when: an employer admin compares a period with its base, builds a report, saves it and
    reopens it by URL."""
    base = _privacy_app(dash_thread_server, tmp_path, 8066)
    driver = dash_br.driver
    driver.get(f"{base}/login")
    driver.find_element(By.ID, "email").send_keys("a@grp.example")
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login-button").click()
    wait = WebDriverWait(driver, 30)
    wait.until(EC.presence_of_element_located((By.ID, "employer-cards")))
    driver.get(f"{base}/employer?from=2026-03&to=2026-03&employer=GRPA")
    table = wait.until(EC.presence_of_element_located((By.ID, "employer-trend-table")))
    assert "Base 2026-02..2026-02" in table.text
    pmpm = next(row for row in table.find_elements(By.TAG_NAME, "tr") if row.text.startswith("PMPM paid"))
    assert pmpm.text.count("$") >= 3, pmpm.text  # base, period and change are published for GRPA
    # build: PMPM by service category against the prior period, then by quarter through the dropdown
    driver.get(f"{base}/employer/builder?measure=pmpm_paid&by=service_category&compare=prior&from=2026-02"
               f"&to=2026-03&employer=GRPA")
    wait.until(EC.presence_of_element_located((By.ID, "builder-table")))
    assert "pharmacy" in driver.find_element(By.ID, "builder-table").text
    dash_br.select_dcc_dropdown("#builder-by", value="Month")
    wait.until(lambda d: "by=month" in d.current_url)  # the address bar follows the builder
    wait.until(EC.text_to_be_present_in_element((By.ID, "builder-table"), "2026-03"))
    # save it, shared, and reopen it by its URL
    driver.find_element(By.ID, "builder-name").send_keys("PMPM by month")
    driver.find_element(By.CSS_SELECTOR, "#builder-save-options input[value='shared']").click()
    driver.find_element(By.ID, "builder-save").click()
    link = wait.until(EC.presence_of_element_located((By.ID, "builder-saved-link"))).get_attribute("href")
    assert "/employer/builder?saved=" in link
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SCREENSHOTS / "builder.png"))
    driver.get(link)
    wait.until(EC.text_to_be_present_in_element((By.ID, "builder-opened"), "PMPM by month"))
    wait.until(EC.text_to_be_present_in_element((By.ID, "builder-table"), "2026-03"))
    assert "Month" in driver.find_element(By.ID, "builder-by").text
    assert "PMPM by month" in driver.find_element(By.ID, "builder-saved-list").text
    logs = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"
            and "favicon" not in entry["message"]]
    assert not logs, logs


def test_over_several_employers_the_admins_pmpm_chart_matches_the_card(browser_ready, dash_thread_server, dash_br,
                                                                      tmp_path):
    """Issue 13, done when: an admin over all three employers sees the PMPM chart titled with the card's period
    PMPM (one Σ paid ÷ Σ member months, not a stack of each employer's)."""
    base = _privacy_app(dash_thread_server, tmp_path, 8067)
    driver = dash_br.driver
    _login(driver, base, "admin")
    wait = WebDriverWait(driver, 30)
    wait.until(EC.presence_of_element_located((By.ID, "nav-user")))
    driver.get(f"{base}/employer?from=2026-01&to=2026-03")
    card = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#kpi-pmpm-paid .kpi-value")))
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#employer-pmpm .gtitle")))
    title = driver.find_element(By.CSS_SELECTOR, "#employer-pmpm .gtitle").text
    assert f"period {card.text})" in title, (card.text, title)
    assert card.text.startswith("$")
