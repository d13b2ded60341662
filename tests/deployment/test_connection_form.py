"""The Credly and Canvas Credentials connection forms in a real browser: headless Chromium (Debian's
``chromium`` and ``chromium-driver``, installed by ``scripts/bootstrap.sh``) driving the UI of a real
api-server. A user adds each connection through the form, saves it and presses the list's Test button.

Set ``CREDLY_UPDATE_SCREENSHOTS=1`` to write the forms' screenshots to ``docs/images/`` (the README shows
them); otherwise they go to the test's temporary folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_credly.get_provider_info import CONNECTION_TYPES
from tests.helpers import require

pytestmark = [pytest.mark.deployment, pytest.mark.integration, pytest.mark.timeout(600)]

DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",  # the tests may run as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # no calls home: a closed network refuses them, and they slow every start
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1500",
)


def _browser_problem() -> str | None:
    missing = [name for name in ("chromium", "chromedriver") if shutil.which(name) is None]
    if missing:
        return (
            f"{' and '.join(missing)} not installed (scripts/bootstrap.sh installs Debian's packages as root)"
        )
    try:
        import selenium  # noqa: F401
    except ImportError as exc:
        return f"selenium is not installed: {exc}"
    return None


def _fields(conn_type: str) -> dict[str, Any]:
    entry = next(c for c in CONNECTION_TYPES if c["connection-type"] == conn_type)
    return entry


class ConnectionsPage:
    """The UI's connection list and its Add Connection dialog, as a user sees them."""

    def __init__(self, driver: Any, base_url: str) -> None:
        from selenium.webdriver.common.by import By

        self.driver, self.base_url, self.by = driver, base_url, By

    def find(self, css: str, root: Any = None) -> Any:
        return (root or self.driver).find_element(self.by.CSS_SELECTOR, css)

    def find_all(self, css: str, root: Any = None) -> list[Any]:
        return list((root or self.driver).find_elements(self.by.CSS_SELECTOR, css))

    def button(self, text: str, root: Any = None) -> Any:
        """The button whose text is ``text`` (exactly, trimmed)."""
        return (root or self.driver).find_element(self.by.XPATH, f".//button[normalize-space(.)='{text}']")

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = check()
            except Exception:  # the element is not there yet (or went stale while React re-rendered)
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                shot = Path(tempfile.gettempdir()) / "credly-connection-form-failure.png"
                self.driver.save_screenshot(str(shot))
                raise TimeoutError(f"{what}: not within {timeout} s (the page then: {shot})")
            time.sleep(0.2)

    def open_new_form(self, hook_name: str) -> Any:
        """Open Add Connection and choose ``hook_name``; the dialog (its Standard Fields section open)."""
        from selenium.webdriver.common.keys import Keys

        self.driver.get(f"{self.base_url}/connections")
        self.wait_for("Add Connection", lambda: self.button("Add Connection")).click()
        dialog = self.wait_for("the dialog", lambda: self.find("[role=dialog]"))
        box = self.find("input[role=combobox]", dialog)
        box.send_keys(hook_name)
        self.wait_for(f"the {hook_name} option", lambda: self.find("[id*=-option-]").text == hook_name)
        box.send_keys(Keys.ENTER)
        self.wait_for("the standard fields", lambda: self.find("input[name=host]", dialog).is_displayed())
        return dialog

    def open_section(self, dialog: Any, title: str) -> None:
        """Expand the form's section ``title`` (the form shows one section at a time)."""
        button = self.button(title, dialog)
        if button.get_attribute("aria-expanded") != "true":
            button.click()
        self.wait_for(f"{title} open", lambda: button.get_attribute("aria-expanded") == "true")
        time.sleep(0.3)  # the section's opening animation

    def fill(self, dialog: Any, values: dict[str, Any]) -> None:
        """Type ``values`` into inputs named so (extra fields: ``element_<name>``), replacing what is there;
        the section holding them must be open."""
        from selenium.webdriver.common.keys import Keys

        for name, value in values.items():
            element = self.find(f"[name='{name}']", dialog)
            element.send_keys(Keys.CONTROL, "a")
            element.send_keys(Keys.DELETE)
            element.send_keys(str(value))

    def save(self, dialog: Any, conn_id: str) -> None:
        save = self.find("footer button", dialog)
        self.wait_for("Save enabled", lambda: save.is_enabled())
        save.click()
        self.wait_for(f"{conn_id} listed", lambda: self._row(conn_id))

    def _row(self, conn_id: str) -> Any:
        rows = [
            r
            for r in self.find_all("tbody tr")
            if any(c.text.strip() == conn_id for c in self.find_all("td", r))
        ]
        return rows[0] if rows else None

    def test_connection(self, conn_id: str) -> str:
        """Press the list's Test button of ``conn_id``; the text of the toast that answers (toasts shown
        before, such as "Create Connection Request Submitted", are not the answer)."""
        toasts = "[data-scope=toast][data-part=root]"
        before = {t.text for t in self.find_all(toasts)}
        self.find("button[aria-label='Test Connection']", self._row(conn_id)).click()
        answer = self.wait_for(
            "the test's answer",
            lambda: [
                t.text
                for t in self.find_all(toasts)
                if t.text.strip() and t.text not in before and not t.text.startswith("Create Connection")
            ],
        )
        return str(answer[0])


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require(_browser_problem())
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def page(deployment, browser) -> Iterator[ConnectionsPage]:
    dep = deployment[0]
    dep.start_api_server()
    try:
        yield ConnectionsPage(browser, dep.api_url)
    finally:
        dep.stop()


def _screenshot(page: ConnectionsPage, dialog: Any, name: str, tmp_path: Path) -> Path:
    folder = DOCS_IMAGES if os.environ.get("CREDLY_UPDATE_SCREENSHOTS") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    dialog.screenshot(str(path))
    assert path.stat().st_size > 10_000  # a real picture, not an empty frame
    return path


def _assert_labelled_with_help_text(page: ConnectionsPage, dialog: Any, conn_type: str) -> None:
    """Every standard field is relabelled and has its placeholder; every extra field shows its label, its
    help text and its default; nothing reads "null" or a masked "***". Leaves Extra Fields open."""
    entry = _fields(conn_type)
    behaviour = entry["ui-field-behaviour"]
    page.open_section(dialog, "Standard Fields")
    text = dialog.text
    for field, label in behaviour["relabeling"].items():
        assert label in text, (field, label)
    for field, placeholder in behaviour["placeholders"].items():
        if field != "extra":  # the JSON editor has no placeholder of its own
            element = page.find(f"[name='{field}']", dialog)
            assert element.get_attribute("placeholder") == placeholder, field
    for hidden in behaviour["hidden-fields"]:
        assert not page.find_all(f"input[name='{hidden}']", dialog), hidden
    page.open_section(dialog, "Extra Fields")
    text = dialog.text
    for name, field in entry["conn-fields"].items():
        assert field["label"] in text, name
        assert field["description"] in text, name
        element = page.find(f"[name='element_{name}']", dialog)
        default = field["schema"].get("default")
        if default is not None:
            assert element.get_attribute("value") == str(default), name
    assert "null" not in text.split()
    assert "***" not in text
    for element in page.find_all("input, textarea", dialog):
        assert element.get_attribute("value") not in ("***", "null", "__null__"), element.get_attribute(
            "name"
        )


def test_credly_form_saves_and_tests_against_the_emulator(page, deployment, tmp_path):
    dep, credly, _, _ = deployment
    dialog = page.open_new_form("Credly")
    _assert_labelled_with_help_text(page, dialog, "credly")
    port = credly.base_url.split(":")[2].split("/")[0]
    values = {"host": credly.base_url, "port": port, "password": credly.token}
    _screenshot(page, dialog, "credly-connection-extra-fields.png", tmp_path)
    page.fill(dialog, {"element_organization_id": credly.org_id})
    page.open_section(dialog, "Standard Fields")
    _screenshot(page, dialog, "credly-connection-form.png", tmp_path)  # empty: the placeholders show
    page.fill(dialog, {"connection_id": "credly_ui", **values})
    page.save(dialog, "credly_ui")

    answer = page.test_connection("credly_ui")
    assert "Connected to Credly organization" in answer, answer
    assert credly.token not in answer

    # a bad token: the Test button says 401 in words a user understands, without echoing the token
    dialog = page.open_new_form("Credly")
    bad = "not-the-token-" + credly.token[-6:]
    page.fill(dialog, {"connection_id": "credly_ui_bad", **values, "password": bad})
    page.open_section(dialog, "Extra Fields")
    page.fill(dialog, {"element_organization_id": credly.org_id})
    page.save(dialog, "credly_ui_bad")
    answer = page.test_connection("credly_ui_bad")
    assert "401" in answer and "Check your authorization token" in answer, answer
    assert bad not in answer

    saved = dep.api().request("GET", "/connections/credly_ui")
    assert saved["port"] == int(port) and saved["host"] == credly.base_url
    assert credly.token not in str(saved)  # the API masks the password
    for name, text in dep.component_logs().items():  # nor did the api-server log what was typed
        assert credly.token not in text and bad not in text, f"a token typed in the form is in {name}'s log"


def test_canvas_form_saves_and_tests_against_the_emulator(page, deployment, tmp_path):
    _, _, canvas, _ = deployment
    dialog = page.open_new_form("Canvas Credentials (Badgr)")
    _assert_labelled_with_help_text(page, dialog, "canvas_credentials")
    # the region is a choice of named regions with nothing chosen (not a literal "null")
    region = page.find("[id='element_region']", dialog)
    assert "null" not in region.text.lower()
    port = canvas.base_url.rsplit(":", 1)[1].rstrip("/")
    values = {"host": canvas.base_url, "port": port, "login": canvas.username, "password": canvas.password}
    _screenshot(page, dialog, "canvas-credentials-connection-extra-fields.png", tmp_path)
    page.open_section(dialog, "Standard Fields")
    _screenshot(page, dialog, "canvas-credentials-connection-form.png", tmp_path)
    page.fill(dialog, {"connection_id": "canvas_ui", **values})
    page.save(dialog, "canvas_ui")

    answer = page.test_connection("canvas_ui")
    assert "Connected to Canvas Credentials" in answer, answer

    dialog = page.open_new_form("Canvas Credentials (Badgr)")
    page.fill(dialog, {"connection_id": "canvas_ui_bad", **values, "password": "wrong-password"})
    page.save(dialog, "canvas_ui_bad")
    answer = page.test_connection("canvas_ui_bad")
    # Canvas Credentials answers a wrong password with 400 invalid_grant on its token endpoint
    assert "400 POST /o/token" in answer and "Invalid credentials" in answer, answer
    assert "wrong-password" not in answer and canvas.password not in answer
