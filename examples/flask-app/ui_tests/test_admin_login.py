"""Admin login with the state file's credentials and the password change written back to it."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, expect

from conftest import UI, admin_credentials, primary_client, read_state


def test_password_change_is_forced_then_written_back(ui: UI, browser: Browser, base_url: str) -> None:
    """On a fresh stack the seeded admin must change the password before anything else; the
    new one lands in the state file and a new browser logs in with it, the old one no longer.
    When an earlier test or run already did the forced change, the state file must say so
    (password_changed_at), and the test changes the password once more from the dashboard, so
    the write-back is checked on every run."""
    username, old_password = admin_credentials()
    changed_before = read_state()["admin"].get("password_changed_at")

    ui.goto("/admin/login", "login")
    ui.fill_login(username, old_password)
    forced = ui.page.locator("#forced-change").count() > 0
    print("password change:", "forced" if forced else "voluntary (already changed before)")
    if forced:
        # While forced, every admin page leads back to the change form.
        expect(ui.page).to_have_url(re.compile(r"/admin/change-password$"))
        ui.goto("/admin/dns", "dns-while-forced")
        expect(ui.page).to_have_url(re.compile(r"/admin/change-password$"))
        expect(ui.page.locator("#forced-change")).to_be_visible()
    else:
        assert changed_before, (
            "the app did not force a password change, yet the state file has no "
            "admin.password_changed_at: the seeded password was changed without being recorded")
        expect(ui.page).to_have_url(re.compile(r"/admin/?$"))
        ui.goto("/admin/change-password", "change-password")
    new = ui.change_password(old_password)

    state = read_state()
    assert state["admin"]["password"] == new
    assert state["admin"]["password_changed_at"]
    expect(ui.page).to_have_url(re.compile(r"/admin/?$"))
    # The dashboard lists the admin as no longer forced (columns: user, admin, must change).
    row = ui.page.locator("#users tr").filter(has=ui.page.locator("td", has_text=re.compile(f"^{username}$")))
    expect(row.locator("td").nth(2)).to_have_text("no")

    # A fresh browser context: no cookie from above.
    context = browser.new_context(base_url=base_url)
    try:
        fresh = UI(context.new_page(), ui.screens)  # same numbering, the new page
        fresh.goto("/admin/login", "fresh-login")
        response = fresh.fill_login(username, old_password)
        assert response is not None and response.status == 401, "the old password still works"
        expect(fresh.page.locator(".flash.error")).to_contain_text("Invalid user name or password")

        fresh.fill_login(username, read_state()["admin"]["password"])
        expect(fresh.page).to_have_url(re.compile(r"/admin/?$"))
        expect(fresh.page.locator("#forced-change")).to_have_count(0)
        expect(fresh.page.locator("#username")).to_have_text(username)
    finally:
        context.close()


def test_admin_login_with_state_file_credentials(ui: UI) -> None:
    """The login fixture's path (forced change handled if it shows up), then the dashboard must
    show what the state file says about the deployment: the admin user and the API clients."""
    ui.login_admin()
    username, _ = admin_credentials()
    expect(ui.page.locator("#username")).to_have_text(username)
    client_id = primary_client()["client_id"]
    expect(ui.page.locator("#clients")).to_contain_text(client_id)
    expect(ui.page.locator("#deployment-target")).to_have_text(f"target: {read_state().get('target', 'local')}")

    # The session is real: a protected page opens without a new login, and logging out ends it.
    ui.goto("/admin/notify", "notify-page")
    expect(ui.page).to_have_url(re.compile(r"/admin/notify$"))
    ui.submit(ui.page.locator("#logout"), "after-logout")
    expect(ui.page).to_have_url(re.compile(r"/admin/login$"))
    ui.goto("/admin/notify", "notify-after-logout")
    expect(ui.page).to_have_url(re.compile(r"/admin/login\?next=(/|%2F)admin(/|%2F)notify$"))


def test_wrong_password_is_refused_and_state_file_untouched(ui: UI) -> None:
    username, password = admin_credentials()
    before = read_state()
    ui.goto("/admin/login", "login")
    response = ui.fill_login(username, password + "-wrong")
    assert response is not None and response.status == 401
    expect(ui.page.locator(".flash.error")).to_contain_text("Invalid user name or password")
    ui.goto("/admin", "admin-without-session")
    expect(ui.page).to_have_url(re.compile(r"/admin/login"))
    # A refused login must not rotate or lose the recorded credentials.
    assert read_state()["admin"] == before["admin"]
