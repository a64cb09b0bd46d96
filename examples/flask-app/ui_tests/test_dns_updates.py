"""DNS records through the admin UI and the API, checked in the Netcup mock's zone and journal."""

from __future__ import annotations

import random

import pytest
from playwright.sync_api import expect

from conftest import (UI, api_headers, app_url, http, netcup_base, netcup_calls_since,
                      netcup_journal_mark, netcup_zone, unique)

pytestmark = pytest.mark.mocks


def doc_address() -> str:
    # TEST-NET-3: never a real host, and random, so a rerun writes a different value.
    return f"203.0.113.{random.randint(1, 254)}"


def the_record(zone: str, hostname: str) -> dict:
    """The one record of `hostname` in the mock's zone."""
    found = [r for r in netcup_zone(zone)["records"] if r["hostname"] == hostname]
    assert len(found) == 1, f"expected 1 record {hostname!r} in the mock's zone {zone}, found {found}"
    return found[0]


def summary(calls: list[dict]) -> list[tuple]:
    return [(c["action"], c["statuscode"]) for c in calls]


def submit_dns_form(ui: UI, hostname: str, rtype: str, destination: str) -> str:
    """Fill and send the DNS form; returns the zone the page says it manages."""
    ui.goto("/admin/dns", "dns-form")
    zone = ui.page.locator("#zone").inner_text().strip()
    assert zone, "the DNS page names no zone (NETCUP_DOMAIN unset?)"
    ui.page.fill("#hostname", hostname)
    ui.page.select_option("#type", rtype)
    ui.page.fill("#destination", destination)
    ui.submit(ui.page.locator("#dns-form button[type=submit]"), f"dns-{rtype}-{hostname}")
    return zone


def test_dns_update_through_the_ui(admin_ui: UI) -> None:
    hostname, address = unique("ui"), doc_address()
    mark = netcup_journal_mark()
    zone = submit_dns_form(admin_ui, hostname, "A", address)

    result = admin_ui.page.locator("#dns-result")
    expect(result).to_have_attribute("data-status", "ok")
    record_id = admin_ui.page.locator("#record-id").inner_text().strip()
    expect(admin_ui.page.locator("#logins")).to_have_text("1")

    # The mock holds exactly that record, under the id the page showed.
    record = the_record(zone, hostname)
    assert (record["id"], record["type"], record["destination"]) == (record_id, "A", address)
    assert record["deleterecord"] is False and record["state"] == "yes"

    # One login, read, write, logout; all on our zone and all successful.
    calls = netcup_calls_since(mark)
    assert summary(calls) == [("login", 2000), ("infoDnsRecords", 2000),
                              ("updateDnsRecords", 2000), ("logout", 2000)], calls
    assert {c["domainname"] for c in calls if c["action"].endswith("DnsRecords")} == {zone}

    # The dashboard's history shows it too.
    admin_ui.goto("/admin", "dashboard")
    expect(admin_ui.page.locator("#dns-updates")).to_contain_text(f"A {hostname}.{zone} → {address}")


def test_dns_create_then_update_through_the_api() -> None:
    session = http()
    hostname = unique("api")
    first, second = unique("v1"), unique("v2")
    mark = netcup_journal_mark()

    created = session.post(app_url("/api/dns"), headers=api_headers(), timeout=60,
                           json={"hostname": hostname, "type": "TXT", "destination": first})
    assert created.status_code == 200, created.text
    body = created.json()
    zone, record_id = body["domain"], body["record"]["id"]
    assert body["status"] == "ok" and body["logins"] == 1
    others_before = [r for r in netcup_zone(zone)["records"] if r["hostname"] != hostname]

    updated = session.post(app_url("/api/dns"), headers=api_headers(), timeout=60,
                           json={"hostname": hostname, "type": "TXT", "destination": second})
    assert updated.status_code == 200, updated.text
    # Same (hostname, type) again: the app updates that record instead of adding one.
    assert updated.json()["record"]["id"] == record_id

    record = the_record(zone, hostname)
    assert (record["id"], record["type"], record["destination"]) == (record_id, "TXT", second)
    # Only the submitted record changed; everything else in the zone stayed as it was.
    others_after = [r for r in netcup_zone(zone)["records"] if r["hostname"] != hostname]
    assert others_after == others_before

    writes = [c for c in netcup_calls_since(mark) if c["action"] == "updateDnsRecords"]
    assert [(c["domainname"], c["statuscode"]) for c in writes] == [(zone, 2000), (zone, 2000)]


def test_netcup_4001_makes_the_app_log_in_again(admin_ui: UI) -> None:
    """Netcup drops sessions now and then (4001). One injected 4001 on the write must cost the
    app one more login, not the update."""
    control = http()
    faults_url = netcup_base() + "/_harness/faults"
    mark = netcup_journal_mark()
    added = control.post(faults_url, timeout=10, json={
        "action": "updateDnsRecords", "kind": "session_invalid", "count": 1})
    assert added.status_code == 201, added.text
    try:
        hostname, address = unique("retry"), doc_address()
        zone = submit_dns_form(admin_ui, hostname, "A", address)
        expect(admin_ui.page.locator("#dns-result")).to_have_attribute("data-status", "ok")
        expect(admin_ui.page.locator("#logins")).to_have_text("2")

        calls = netcup_calls_since(mark)
        assert summary(calls) == [
            ("login", 2000), ("infoDnsRecords", 2000),
            ("updateDnsRecords", 4001),          # the injected fault
            ("login", 2000),                     # the second login the journal must show
            ("updateDnsRecords", 2000), ("logout", 2000),
        ], calls
        assert calls[2]["fault"] == {"kind": "session_invalid"}
        assert all(c["fault"] is None for c in calls if c is not calls[2])
        # The fault is used up, and the failed attempt wrote nothing: one record, not two.
        assert control.get(faults_url, timeout=10).json()["faults"] == []
        record = the_record(zone, hostname)
        assert record["destination"] == address
    finally:
        # Never leave a fault behind for a later test if the app did not consume it.
        control.delete(faults_url, timeout=10)
