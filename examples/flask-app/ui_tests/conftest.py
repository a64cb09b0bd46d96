"""Shared fixtures of the browser suite: environment, state file, mocks, browser, login, screenshots.

`harness test` runs this folder read-only at /tests inside the playwright container (see README.md
beside this file for the environment it provides). Every test file must pass on its own and in any
order, against an app whose admin password an earlier test (or an earlier run) may already have
changed, so nothing here assumes a fresh stack.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
from playwright.sync_api import Page, expect

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# The mocks' documented default GeoIP credentials (mocks/README.md); not secrets.
GEOIP_ACCOUNT_DEFAULT = "42"
GEOIP_LICENSE_DEFAULT = "test-license-key"


def pytest_configure(config: pytest.Config) -> None:
    # harness deselects these with `-m "not mocks"` when the stack runs without --with-mocks.
    config.addinivalue_line("markers", "mocks: needs the Netcup, GeoIP and Mailpit mocks")


# --------------------------------------------------------------------------- environment


def env(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        pytest.fail(f"{name} is not set; harness test provides it (see ui_tests/README.md)")
    return value


def base_url_from_env() -> str:
    return env("UI_BASE_URL").rstrip("/")


def app_url(path: str) -> str:
    return base_url_from_env() + path


def service_base(url: str, cut: str) -> str:
    """The scheme://host:port of a mock URL. An older harness passed the Netcup endpoint URL
    instead of the base URL, so anything from `cut` on is dropped."""
    parts = urlsplit(url)
    path = parts.path.split(cut, 1)[0].rstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def ui_is_https() -> bool:
    return os.environ.get("UI_BASE_URL", "").startswith("https://")


# For tests about TLS itself; `harness test --no-tls` serves plain HTTP and they do not apply.
requires_tls = pytest.mark.skipif(not ui_is_https(), reason="the stack runs without TLS (--no-tls)")


def netcup_base() -> str:
    return service_base(env("MOCK_NETCUP_API_URL"), "/run/webservice")


def geoip_base() -> str:
    return service_base(env("MOCK_GEOIP_API_URL"), "/geoip/")


def geoip_auth() -> tuple[str, str]:
    return (os.environ.get("GEOIP_ACCOUNT_ID") or GEOIP_ACCOUNT_DEFAULT,
            os.environ.get("GEOIP_LICENSE_KEY") or GEOIP_LICENSE_DEFAULT)


def unique(prefix: str) -> str:
    """A value no other test (or earlier run against the same stack) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def http() -> requests.Session:
    """requests verifies TLS with REQUESTS_CA_BUNDLE (system roots + the run CA): never verify=False."""
    session = requests.Session()
    session.headers["User-Agent"] = "harness-ui-tests"
    return session


# --------------------------------------------------------------------------- state file


def state_path() -> Path:
    return Path(env("DEPLOYMENT_STATE_FILE"))


def read_state() -> dict[str, Any]:
    """Read fresh every time: another test may have changed the admin password."""
    with state_path().open(encoding="utf-8") as fh:
        return json.load(fh)


def update_state(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Apply `change` to the current state and write it back atomically (temp file in the same
    directory + os.replace), keeping every key this suite does not know about."""
    path = state_path()
    state = read_state()
    change(state)
    state["last_updated_at"] = utc_now()
    state["updated_by"] = "ui_tests"
    fd, tmp = tempfile.mkstemp(prefix=".state-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(state, fh, indent=2)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.chmod(tmp, 0o600)  # it holds secrets
        except OSError:
            pass
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return state


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def admin_credentials() -> tuple[str, str]:
    admin = read_state()["admin"]
    return admin["username"], admin["password"]


def primary_client() -> dict[str, Any]:
    clients = read_state().get("clients") or []
    assert clients, "the state file lists no API clients"
    return next((c for c in clients if c.get("is_primary")), clients[0])


def api_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {primary_client()['secret_key']}"}


def new_password() -> str:
    # >= 12 characters (the app's rule), never equal to the user name.
    return "Ui-" + secrets.token_urlsafe(18)


# --------------------------------------------------------------------------- mocks


def netcup_journal() -> list[dict[str, Any]]:
    response = http().get(netcup_base() + "/_harness/journal", timeout=10)
    response.raise_for_status()
    return response.json()["calls"]


def netcup_journal_mark() -> int:
    """The highest journal seq now; calls after it belong to the step under test."""
    return max((c["seq"] for c in netcup_journal()), default=0)


def netcup_calls_since(mark: int) -> list[dict[str, Any]]:
    return [c for c in netcup_journal() if c["seq"] > mark]


def netcup_zone(name: str) -> dict[str, Any]:
    response = http().get(f"{netcup_base()}/_harness/zones/{name}", timeout=10)
    assert response.status_code == 200, f"the Netcup mock does not know zone {name}: {response.text}"
    return response.json()


def mailpit_api() -> str:
    return env("MAILPIT_API_URL").rstrip("/")


def mailpit_session() -> requests.Session:
    session = http()
    user = os.environ.get("MAILPIT_USERNAME", "")
    if user:
        session.auth = (user, os.environ.get("MAILPIT_PASSWORD", ""))
    return session


def mailpit_search(query: str, expect_count: int = 1, timeout: float = 20) -> list[dict[str, Any]]:
    """Messages matching a Mailpit search, polled until `expect_count` are there (SMTP delivery
    and the catcher's indexing are not instant on every server)."""
    session = mailpit_session()
    deadline = time.monotonic() + timeout
    while True:
        response = session.get(mailpit_api() + "/search", params={"query": query}, timeout=10)
        response.raise_for_status()
        messages = response.json()["messages"]
        if len(messages) >= expect_count or time.monotonic() > deadline:
            return messages
        time.sleep(0.5)


def mailpit_message(message_id: str) -> dict[str, Any]:
    response = mailpit_session().get(f"{mailpit_api()}/message/{message_id}", timeout=10)
    response.raise_for_status()
    return response.json()


# --------------------------------------------------------------------------- browser


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    # Debian's Chromium from the image, never a downloaded one. It trusts the run CA through the
    # NSS db the harness creates in $HOME; no certificate errors are ever ignored.
    return {
        **browser_type_launch_args,
        "executable_path": os.environ.get("PLAYWRIGHT_CHROMIUM", "/usr/bin/chromium"),
        "args": ["--no-sandbox"],
    }


@pytest.fixture(scope="session")
def base_url() -> str:
    # Overrides pytest-base-url's fixture; pytest-playwright hands it to every browser context,
    # so page.goto("/admin") works.
    return base_url_from_env()


class Screens:
    """Screenshots into SCREENSHOT_DIR, named `<file>.<test>-NN-<label>.png` so each one says
    which test and which step took it."""

    def __init__(self, page: Page, node: pytest.Item):
        self.page = page
        self.dir = Path(os.environ.get("SCREENSHOT_DIR") or "/report/screenshots")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.stem = safe_name(f"{Path(str(node.fspath)).stem}.{node.name}")
        self.count = 0
        self.paths: list[Path] = []

    def shot(self, label: str, page: Page | None = None) -> Path:
        """Screenshot `page` (default: the test's page) as the test's next numbered step."""
        self.count += 1
        path = self.dir / f"{self.stem}-{self.count:02d}-{safe_name(label)}.png"
        (page or self.page).screenshot(path=str(path), full_page=True)
        # A helper that silently writes nothing would hide every later report problem.
        assert path.read_bytes()[:8] == PNG_MAGIC, f"{path} is not a PNG"
        self.paths.append(path)
        return path


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:150]


class UI:
    """The page plus the habits of this suite: absolute app paths, a screenshot after every
    page the browser lands on, and the admin login with the forced password change."""

    def __init__(self, page: Page, screens: Screens):
        self.page = page
        self.screens = screens

    def goto(self, path: str, label: str | None = None) -> Any:
        response = self.page.goto(path)
        assert response is not None, f"no response for {path}"
        self.screens.shot(label or path, self.page)
        return response

    def submit(self, button: Any, label: str) -> Any:
        """Click a submit button, wait for the page it leads to and screenshot it."""
        with self.page.expect_navigation() as navigation:
            button.click()
        response = navigation.value
        self.page.wait_for_load_state()
        self.screens.shot(label, self.page)
        return response

    def fill_login(self, username: str, password: str) -> Any:
        self.page.fill("#username", username)
        self.page.fill("#password", password)
        return self.submit(self.page.locator("#login-form button[type=submit]"), "after-login")

    def login_admin(self) -> str:
        """Log in with the state file's credentials and get past a forced password change
        (writing the new password back). Returns the password that works now."""
        username, password = admin_credentials()
        self.goto("/admin/login", "login")
        self.fill_login(username, password)
        if self.page.locator("#forced-change").count():
            password = self.change_password(password)
        expect(self.page).to_have_url(re.compile(r"/admin/?$"))
        expect(self.page.locator("#username")).to_have_text(username)
        return password

    def change_password(self, current: str) -> str:
        """Fill the change-password form on the current page; once the app confirms, write the
        new password to the state file at once, so no later test is locked out."""
        password = new_password()
        self.page.fill("#current_password", current)
        self.page.fill("#new_password", password)
        self.page.fill("#confirm_password", password)
        response = self.submit(self.page.locator("#change-password-form button[type=submit]"),
                               "after-password-change")
        assert response is not None and response.ok, "the password change was refused"
        expect(self.page.locator(".flash.info")).to_contain_text("password has been changed")

        def record(state: dict[str, Any]) -> None:
            state["admin"]["password"] = password
            state["admin"]["password_changed_at"] = utc_now()

        update_state(record)
        return password


@pytest.fixture
def screens(page: Page, request: pytest.FixtureRequest):
    screens = Screens(page, request.node)
    yield screens
    # A last screenshot when the test failed, for the run report. Here, not in an autouse
    # fixture, because this teardown runs while the page is still open.
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        try:
            screens.shot("failed")
        except Exception:  # noqa: BLE001 - a broken page must not mask the real failure
            pass


@pytest.fixture
def ui(page: Page, screens: Screens) -> UI:
    return UI(page, screens)


@pytest.fixture
def admin_ui(ui: UI) -> UI:
    """A browser logged in as the admin."""
    ui.login_admin()
    return ui


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
