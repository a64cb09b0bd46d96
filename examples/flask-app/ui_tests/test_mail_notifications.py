"""Notification mails, checked where they land: the Mailpit(-compatible) catcher's API."""

from __future__ import annotations

import os
import random

import pytest
from playwright.sync_api import Browser, expect

from conftest import (UI, api_headers, app_url, env, http, mailpit_message, mailpit_search,
                      mailpit_session, mailpit_api, unique)

pytestmark = pytest.mark.mocks


def the_mail(subject: str) -> dict:
    """The one message in the catcher with this (unique) subject."""
    found = mailpit_search(f'subject:"{subject}"', expect_count=1)
    assert len(found) == 1, f"expected 1 mail with subject {subject!r} in the catcher, found {len(found)}"
    return found[0]


def test_notification_from_the_ui_arrives(admin_ui: UI, browser: Browser, base_url: str) -> None:
    token = unique("ui-mail")
    recipient = f"{token}@example.org"
    subject = f"UI notification {token}"
    admin_ui.goto("/admin/notify", "notify-form")
    admin_ui.page.fill("#to", recipient)
    admin_ui.page.fill("#subject", subject)
    admin_ui.page.fill("#body", f"Body line with {token}.\nSecond line.")
    admin_ui.submit(admin_ui.page.locator("#notify-form button[type=submit]"), "notify-sent")
    expect(admin_ui.page.locator(".flash.info")).to_have_text(f"Notification sent to {recipient}.")

    summary = the_mail(subject)
    assert [to["Address"] for to in summary["To"]] == [recipient]
    message = mailpit_message(summary["ID"])
    assert message["Subject"] == subject
    assert f"Body line with {token}." in message["Text"]
    assert message["From"]["Address"], "the mail has no From address"
    assert message["MessageID"], "the mail has no Message-ID"

    # The catcher's own view of the message, through the proxy, in a browser context that
    # carries Mailpit's credentials when it has some.
    user = os.environ.get("MAILPIT_USERNAME", "")
    credentials = {"username": user, "password": os.environ.get("MAILPIT_PASSWORD", "")} if user else None
    context = browser.new_context(base_url=base_url, http_credentials=credentials)
    try:
        page = context.new_page()
        view = env("MAILPIT_URL").rstrip("/") + f"/view/{summary['ID']}.txt"
        response = page.goto(view)
        assert response is not None and response.ok, view
        admin_ui.screens.shot("mailpit-view", page)
        expect(page.locator("body")).to_contain_text(f"Body line with {token}.")
    finally:
        context.close()


def test_notification_from_the_api_arrives() -> None:
    token = unique("api-mail")
    recipient = f"{token}@example.org"
    subject = f"API notification {token}"
    response = http().post(app_url("/api/notify"), headers=api_headers(), timeout=60,
                           json={"subject": subject, "body": f"Sent by {token}", "to": recipient})
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "sent"}

    summary = the_mail(subject)
    headers = mailpit_session().get(f"{mailpit_api()}/message/{summary['ID']}/headers", timeout=10)
    headers.raise_for_status()
    assert headers.json()["To"] == [recipient]
    assert headers.json()["Subject"] == [subject]
    assert f"Sent by {token}" in mailpit_message(summary["ID"])["Text"]


def test_refused_notification_sends_nothing() -> None:
    """A request the app rejects must not reach the catcher."""
    subject = f"Never sent {unique('bad')}"
    response = http().post(app_url("/api/notify"), headers=api_headers(), timeout=60,
                           json={"subject": subject, "body": "x", "to": "not an address"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_recipient"
    # A short poll: long enough that a mail sent anyway would show up.
    assert mailpit_search(f'subject:"{subject}"', expect_count=1, timeout=3) == []


def test_dns_update_sends_a_notification() -> None:
    hostname = unique("notify")
    address = f"198.51.100.{random.randint(1, 254)}"
    response = http().post(app_url("/api/dns"), headers=api_headers(), timeout=60,
                           json={"hostname": hostname, "type": "A", "destination": address})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["notification"] == "sent"

    fqdn = f"{hostname}.{body['domain']}"
    summary = the_mail(f"DNS updated: A {fqdn}")
    text = mailpit_message(summary["ID"])["Text"]
    assert f"The A record of {fqdn} now points to {address}." in text
