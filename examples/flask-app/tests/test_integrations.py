"""The DNS update and notification use cases through the admin form and the API, against
the in-test servers of fakes.py."""

import sqlite3

import pytest

from conftest import ADMIN_PASSWORD, CLIENT_TOKEN, csrf_from, login
from fakes import FakeNetcup, SmtpSink

AUTH = {"Authorization": f"Bearer {CLIENT_TOKEN}"}


@pytest.fixture
def netcup(monkeypatch):
    fake = FakeNetcup()
    monkeypatch.setenv("NETCUP_API_URL", fake.url)
    monkeypatch.setenv("NETCUP_CUSTOMER_NUMBER", "12345")
    monkeypatch.setenv("NETCUP_API_KEY", "api-key")
    monkeypatch.setenv("NETCUP_API_PASSWORD", "api-password")
    monkeypatch.setenv("NETCUP_DOMAIN", "example.org")
    yield fake
    fake.close()


@pytest.fixture
def smtp(monkeypatch):
    sink = SmtpSink()
    # The local seed points at host "mailpit"; the env override is what the stack uses too.
    monkeypatch.setenv("MAIL_HOST", "127.0.0.1")
    monkeypatch.setenv("MAIL_PORT", str(sink.port))
    yield sink
    sink.close()


def dns_log(app_root):
    conn = sqlite3.connect(app_root / "app.db")
    try:
        return conn.execute("SELECT actor, hostname, type, destination, status, statuscode,"
                            " logins FROM dns_updates ORDER BY id").fetchall()
    finally:
        conn.close()


def updates_sent(fake):
    return [entry["param"]["dnsrecordset"]["dnsrecords"] for entry in fake.journal
            if entry["action"] == "updateDnsRecords"]


def test_api_update_existing_record_sends_only_that_record(client, app_root, netcup, smtp):
    response = client.post("/api/dns", headers=AUTH, json={
        "hostname": "www", "type": "A", "destination": "198.51.100.7"})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["record"]["id"] == "1"
    assert body["logins"] == 1
    assert updates_sent(netcup) == [[{"id": "1", "hostname": "www", "type": "A",
                                      "destination": "198.51.100.7", "priority": "0",
                                      "deleterecord": False}]]
    assert [r["destination"] for r in netcup.records] == ["198.51.100.7", "mx.example.org"]
    assert all(e["path"] == "/run/webservice/servers/endpoint.php?JSON" for e in netcup.journal)
    assert netcup.journal[-1]["action"] == "logout"
    assert dns_log(app_root) == [("client:primary", "www", "A", "198.51.100.7", "ok", 2000, 1)]
    assert body["notification"] == "sent"
    [mail] = smtp.messages
    assert mail["to"] == ["<admin@app.localtest.me>"]
    assert "Subject: DNS updated: A www.example.org" in mail["data"]


def test_api_creates_a_record_that_does_not_exist(client, netcup, smtp):
    response = client.post("/api/dns", headers=AUTH, json={
        "hostname": "home", "type": "AAAA", "destination": "2001:db8::7"})
    assert response.status_code == 200
    [[sent]] = updates_sent(netcup)
    assert "id" not in sent
    assert response.get_json()["record"]["id"] == "3"
    assert len(netcup.records) == 3


def test_4001_makes_the_app_log_in_again_once(client, app_root, netcup, smtp):
    netcup.fail_next_with_4001 = 1
    response = client.post("/api/dns", headers=AUTH, json={
        "hostname": "www", "type": "A", "destination": "198.51.100.8"})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["logins"] == 2
    assert [e["action"] for e in netcup.journal].count("login") == 2
    assert netcup.records[0]["destination"] == "198.51.100.8"
    assert dns_log(app_root)[-1][-3:] == ("ok", 2000, 2)


def test_repeated_4001_fails_after_one_retry(client, app_root, netcup, smtp):
    netcup.fail_next_with_4001 = 5
    response = client.post("/api/dns", headers=AUTH, json={
        "hostname": "www", "type": "A", "destination": "198.51.100.9"})
    assert response.status_code == 502
    assert response.get_json()["statuscode"] == 4001
    assert [e["action"] for e in netcup.journal].count("login") == 2
    assert netcup.records[0]["destination"] == "192.0.2.1"
    assert dns_log(app_root)[-1][-3:] == ("error", 4001, 2)
    assert smtp.messages == []


def test_wrong_credentials_are_reported_not_retried(client, app_root, netcup, monkeypatch):
    monkeypatch.setenv("NETCUP_API_PASSWORD", "wrong")
    response = client.post("/api/dns", headers=AUTH, json={
        "hostname": "www", "type": "A", "destination": "198.51.100.9"})
    assert response.status_code == 502
    assert response.get_json()["statuscode"] == 4013
    assert [e["action"] for e in netcup.journal] == ["login"]


def test_dns_update_survives_a_mail_failure(client, netcup, monkeypatch):
    monkeypatch.setenv("MAIL_HOST", "127.0.0.1")
    monkeypatch.setenv("MAIL_PORT", "9")
    response = client.post("/api/dns", headers=AUTH, json={
        "hostname": "www", "type": "A", "destination": "198.51.100.10"})
    assert response.status_code == 200
    assert response.get_json()["notification"].startswith("error:")


def logged_in_admin(client):
    login(client)
    page = client.get("/admin/change-password")
    client.post("/admin/change-password", data={
        "csrf_token": csrf_from(page.get_data(as_text=True)), "current_password": ADMIN_PASSWORD,
        "new_password": "another-long-password", "confirm_password": "another-long-password"})
    return client


def test_admin_dns_form(client, app_root, netcup, smtp):
    logged_in_admin(client)
    page = client.get("/admin/dns")
    assert page.status_code == 200
    response = client.post("/admin/dns", data={
        "csrf_token": csrf_from(page.get_data(as_text=True)),
        "hostname": "mail", "type": "MX", "destination": "mx2.example.org", "priority": "20"})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'data-status="ok"' in html and 'id="record-id">2<' in html
    assert netcup.records[1]["destination"] == "mx2.example.org"
    assert netcup.records[1]["priority"] == "20"
    assert dns_log(app_root)[-1][0] == "admin:admin"
    assert "MX mail.example.org → mx2.example.org" in client.get("/admin").get_data(as_text=True)


def test_admin_notify_form_sends_mail(client, app_root, smtp):
    logged_in_admin(client)
    page = client.get("/admin/notify")
    response = client.post("/admin/notify", data={
        "csrf_token": csrf_from(page.get_data(as_text=True)),
        "to": "ops@example.org", "subject": "Maintenance tonight", "body": "Back at 23:00.\n"})
    assert response.status_code == 200
    [mail] = smtp.messages
    assert mail["to"] == ["<ops@example.org>"]
    assert "From: noreply@app.localtest.me" in mail["data"]
    assert "Subject: Maintenance tonight" in mail["data"]
    assert "Back at 23:00." in mail["data"]
    assert "Maintenance tonight" in client.get("/admin").get_data(as_text=True)


def test_api_notify_sends_mail_to_configured_recipient(client, smtp):
    response = client.post("/api/notify", headers=AUTH, json={"subject": "Hello", "body": "Hi"})
    assert response.status_code == 200
    [mail] = smtp.messages
    assert mail["to"] == ["<admin@app.localtest.me>"]


def test_admin_forms_need_csrf(client, netcup):
    logged_in_admin(client)
    response = client.post("/admin/dns", data={"hostname": "www", "type": "A",
                                               "destination": "198.51.100.1"})
    assert response.status_code == 400
    assert netcup.journal == []
