"""Chromium: mandatory MFA enrolment and the two-step login in a real browser, over Secure cookies on
http://localhost, with the CSP in force and no console errors; an admin creates a user from the admin page."""

from __future__ import annotations

import re
import time

import pyotp
import pytest
from selenium.common.exceptions import ElementClickInterceptedException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.conftest import make_app
from tests.test_browser import SCREENSHOTS, _login

pytestmark = pytest.mark.browser


def _severe(driver) -> list[dict]:
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"
            and "favicon" not in entry["message"]]


def _click(driver, element) -> None:
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    try:
        element.click()
    except ElementClickInterceptedException:
        # A native select's popup can still cover the page in headless Chromium: click through the DOM.
        driver.execute_script("arguments[0].click()", element)


def test_required_mfa_enrolment_then_two_step_login(browser_ready, dash_thread_server, dash_br, tmp_path,
                                                    fixture_warehouse_url):
    app = make_app(tmp_path, fixture_warehouse_url, require_mfa=True)
    assert app.config["SESSION_COOKIE_SECURE"]  # the default: browsers accept Secure cookies on localhost
    dash_thread_server(app.extensions["dashboard"].dash_app, port=8063)
    base = "http://localhost:8063"
    driver = dash_br.driver
    wait = WebDriverWait(driver, 30)

    _login(driver, base, "admin")
    wait.until(EC.presence_of_element_located((By.ID, "mfa-secret")))  # sent to enrolment, nothing else
    assert driver.current_url.endswith("/account/mfa")
    qr = driver.find_element(By.ID, "mfa-qr")
    assert driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", qr)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SCREENSHOTS / "mfa-enrolment.png"))
    totp = pyotp.TOTP(driver.find_element(By.ID, "mfa-secret").text.replace(" ", ""))
    driver.get(f"{base}/admin")
    assert driver.current_url.endswith("/account/mfa")
    driver.find_element(By.ID, "code").send_keys(totp.now())
    driver.find_element(By.ID, "mfa-enrol-button").click()
    codes = wait.until(EC.presence_of_element_located((By.ID, "recovery-codes"))).text.split()
    assert len(codes) == 10
    driver.save_screenshot(str(SCREENSHOTS / "mfa-recovery-codes.png"))
    driver.find_element(By.ID, "mfa-continue").click()

    driver.get(f"{base}/admin")
    wait.until(EC.presence_of_element_located((By.ID, "admin-users")))
    assert "admin@test.example" in driver.find_element(By.ID, "admin-users").text
    driver.get(f"{base}/account")
    wait.until(EC.text_to_be_present_in_element((By.ID, "account-mfa-state"), "On"))
    driver.save_screenshot(str(SCREENSHOTS / "account.png"))
    assert not _severe(driver)  # no CSP refusals, no script errors

    driver.find_element(By.ID, "nav-logout").click()  # the navbar's POST form
    wait.until(EC.url_contains("/login"))
    _login(driver, base, "admin")
    wait.until(EC.presence_of_element_located((By.ID, "mfa-button")))
    driver.get(f"{base}/admin")  # the password alone opens nothing
    assert "/login" in driver.current_url
    _login(driver, base, "admin")
    wait.until(EC.presence_of_element_located((By.ID, "code"))).send_keys(totp.at(time.time() + 30))
    driver.find_element(By.ID, "mfa-button").click()
    wait.until(EC.presence_of_element_located((By.ID, "nav-user")))
    assert driver.find_element(By.ID, "nav-user").text.startswith("admin@test.example")


def test_admin_creates_a_user_from_the_admin_page(browser_ready, dash_thread_server, dash_br, tmp_path,
                                                 fixture_warehouse_url):
    app = make_app(tmp_path, fixture_warehouse_url)
    dash_thread_server(app.extensions["dashboard"].dash_app, port=8064)
    base = "http://localhost:8064"
    driver = dash_br.driver
    wait = WebDriverWait(driver, 30)
    _login(driver, base, "admin")
    wait.until(EC.presence_of_element_located((By.ID, "nav-user")))
    driver.get(f"{base}/admin")
    wait.until(EC.presence_of_element_located((By.ID, "admin-new-email"))).send_keys("browser@test.example")
    Select(driver.find_element(By.ID, "admin-new-role")).select_by_value("admin")
    _click(driver, driver.find_element(By.ID, "admin-create"))
    alert = wait.until(EC.presence_of_element_located((By.ID, "admin-feedback-alert")))
    assert re.search(r"Created browser@test\.example; a link", alert.text), alert.text
    wait.until(EC.text_to_be_present_in_element((By.ID, "admin-users"), "browser@test.example"))
    outbox = list((tmp_path / "outbox").glob("*.eml"))
    assert len(outbox) == 1
    assert not _severe(driver)
