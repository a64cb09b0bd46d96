"""Netcup mock against the unmodified PyPI client `nc-dnsapi` (only its endpoint is repointed)."""
import json
import time

import nc_dnsapi
import pytest
import requests
from nc_dnsapi import DNSRecord

from .mockproc import run_failing

CUSTOMER, KEY, PASSWORD = "123456", "test-api-key", "test-api-password"
ENDPOINT = "/run/webservice/servers/endpoint.php?JSON"


@pytest.fixture
def netcup(mock_factory):
    return mock_factory(["netcup", "--port", "0"])


def point_client_at(monkeypatch, mock):
    # The client keeps its endpoint in a private class attribute; that is the only change.
    monkeypatch.setattr(nc_dnsapi.Client, "_Client__endpoint", mock.url(ENDPOINT))


def call(mock, action, **param):
    r = requests.post(mock.url(ENDPOINT), data=json.dumps({"action": action, "param": param}))
    assert r.status_code == 200
    return r.json()


def login(mock):
    body = call(mock, "login", customernumber=CUSTOMER, apikey=KEY, apipassword=PASSWORD)
    assert body["status"] == "success", body
    return body["responsedata"]["apisessionid"]


def control(mock, method, path, **kw):
    return requests.request(method, mock.url(f"/_harness/{path}"), **kw)


def test_client_sequence_login_read_add_update_delete_logout(netcup, monkeypatch):
    point_client_at(monkeypatch, netcup)
    domain = "example.com"
    client = nc_dnsapi.Client(CUSTOMER, KEY, PASSWORD)  # logs in

    zone = client.dns_zone(domain)
    assert zone.name == domain
    assert zone.ttl and zone.serial

    original = client.dns_records(domain)
    assert len(original) >= 3
    assert all(r.id for r in original)

    added = client.add_dns_record(domain, DNSRecord("harness-test", "A", "192.0.2.55"))
    ours = [r for r in added if r.hostname == "harness-test"]
    assert len(ours) == 1 and ours[0].destination == "192.0.2.55"
    assert len(added) == len(original) + 1
    record = ours[0]

    record.destination = "192.0.2.56"
    updated = client.update_dns_record(domain, record)
    assert [r.destination for r in updated if r.id == record.id] == ["192.0.2.56"]

    client.delete_dns_record(domain, record, ignore_unknown=False)
    after = client.dns_records(domain)
    assert not any(r.hostname == "harness-test" for r in after)

    # Records the client never submitted are still there, unchanged.
    assert {(r.id, r.hostname, r.type, r.destination) for r in after} == {
        (r.id, r.hostname, r.type, r.destination) for r in original
    }
    seen = control(netcup, "GET", f"zones/{domain}").json()["records"]
    assert len(seen) == len(original)

    client.logout()
    journal = control(netcup, "GET", "journal").json()["calls"]
    actions = [c["action"] for c in journal]
    assert actions[0] == "login" and actions[-1] == "logout"
    assert all(c["status"] == "success" for c in journal)
    assert PASSWORD not in json.dumps(journal)


def test_session_expires_then_relogin_succeeds(mock_factory, monkeypatch):
    m = mock_factory(["netcup", "--port", "0", "--session-ttl", "1"])
    point_client_at(monkeypatch, m)
    client = nc_dnsapi.Client(CUSTOMER, KEY, PASSWORD)
    assert client.dns_records("example.org")
    time.sleep(1.5)
    with pytest.raises(Exception, match=r"\(4001\)"):
        client.dns_records("example.org")
    client.login()
    assert client.dns_records("example.org")
    client.logout()


def test_logged_out_session_is_4001(netcup):
    sid = login(netcup)
    out = call(netcup, "logout", customernumber=CUSTOMER, apikey=KEY, apisessionid=sid)
    assert out["status"] == "success" and out["responsedata"] == ""
    body = call(netcup, "infoDnsZone", customernumber=CUSTOMER, apikey=KEY, apisessionid=sid, domainname="example.com")
    assert body["statuscode"] == 4001 and body["status"] == "error" and body["responsedata"] == ""


def test_envelope_shape_and_client_request_id(netcup):
    body = call(netcup, "login", customernumber=int(CUSTOMER), apikey=KEY, apipassword=PASSWORD, clientrequestid="abc")
    assert set(body) == {"serverrequestid", "clientrequestid", "action", "status", "statuscode", "shortmessage", "longmessage", "responsedata"}
    assert body["clientrequestid"] == "abc" and body["action"] == "login" and body["statuscode"] == 2000


def test_wrong_password_is_an_api_error_with_http_200(netcup):
    body = call(netcup, "login", customernumber=CUSTOMER, apikey=KEY, apipassword="wrong")
    assert body["status"] == "error" and body["statuscode"] == 4013 and body["responsedata"] == ""


def test_malformed_json_is_4013_in_the_envelope(netcup):
    r = requests.post(netcup.url(ENDPOINT), data="{not json")
    assert r.status_code == 200
    body = r.json()
    assert body["statuscode"] == 4013 and body["status"] == "error" and body["responsedata"] == ""
    assert requests.get(netcup.url("/health")).status_code == 200


def test_unknown_action_is_4013(netcup):
    body = call(netcup, "deleteEverything", customernumber=CUSTOMER)
    assert body["statuscode"] == 4013 and body["action"] == "deleteEverything"
    assert "deleteEverything" in body["longmessage"]


def test_json_and_form_content_types_and_state_as_string(netcup):
    sid = login(netcup)
    payload = {"action": "updateDnsRecords", "param": {
        "customernumber": CUSTOMER, "apikey": KEY, "apisessionid": sid, "domainname": "example.net",
        "dnsrecordset": {"dnsrecords": [{"hostname": "s", "type": "TXT", "destination": "x", "state": "yes", "deleterecord": "false"}]},
    }}
    r = requests.post(netcup.url(ENDPOINT), json=payload)
    assert r.json()["status"] == "success"
    payload["param"]["dnsrecordset"]["dnsrecords"][0].update(hostname="b", state=True, deleterecord=False)
    r = requests.post(netcup.url(ENDPOINT), data=json.dumps(payload), headers={"Content-Type": "application/x-www-form-urlencoded"})
    records = r.json()["responsedata"]["dnsrecords"]
    assert {"s", "b"} <= {x["hostname"] for x in records}
    for x in records:
        assert isinstance(x["id"], str) and isinstance(x["priority"], str)
        assert x["state"] == "yes" and x["deleterecord"] is False


def test_update_zone(netcup):
    sid = login(netcup)
    creds = dict(customernumber=CUSTOMER, apikey=KEY, apisessionid=sid, domainname="example.com")
    before = call(netcup, "infoDnsZone", **creds)["responsedata"]
    after = call(netcup, "updateDnsZone", **creds, dnszone={"ttl": 3600, "refresh": "100"})["responsedata"]
    assert after["ttl"] == "3600" and after["refresh"] == "100"
    assert int(after["serial"]) > int(before["serial"])


def test_strict_zones_and_preloaded_zones(mock_factory, tmp_path):
    zones = tmp_path / "zones.json"
    zones.write_text(json.dumps({"zones": [{"name": "shop.example", "ttl": 300, "records": [
        {"hostname": "@", "type": "A", "destination": "198.51.100.4"},
        {"hostname": "@", "type": "MX", "destination": "mx.shop.example", "priority": 5},
    ]}]}))
    m = mock_factory(["netcup", "--port", "0", "--strict-zones", "--zones", str(zones)])
    sid = login(m)
    creds = dict(customernumber=CUSTOMER, apikey=KEY, apisessionid=sid)
    unknown = call(m, "infoDnsRecords", **creds, domainname="unknown.example")
    assert unknown["statuscode"] == 5028 and unknown["responsedata"] == ""
    known = call(m, "infoDnsRecords", **creds, domainname="shop.example")["responsedata"]["dnsrecords"]
    assert [(r["type"], r["destination"], r["priority"]) for r in known] == [
        ("A", "198.51.100.4", "0"), ("MX", "mx.shop.example", "5")]


def test_control_load_read_and_reset(netcup):
    r = control(netcup, "POST", "zones", json={"zones": [{"name": "loaded.example", "records": [
        {"hostname": "www", "type": "CNAME", "destination": "loaded.example."}]}]})
    assert r.status_code == 200
    z = control(netcup, "GET", "zones/loaded.example").json()
    assert z["zone"]["name"] == "loaded.example" and z["records"][0]["type"] == "CNAME"
    assert control(netcup, "POST", "zones", data="{broken").status_code == 400
    login(netcup)
    assert control(netcup, "POST", "reset").status_code == 200
    assert control(netcup, "GET", "zones/loaded.example").status_code == 404
    assert control(netcup, "GET", "journal").json()["calls"] == []


@pytest.mark.parametrize("kind,expect", [("session_invalid", 4001), ("zone_error", 5028)])
def test_fault_scoped_to_one_action_answers_api_error_then_recovers(netcup, monkeypatch, kind, expect):
    point_client_at(monkeypatch, netcup)
    client = nc_dnsapi.Client(CUSTOMER, KEY, PASSWORD)
    r = control(netcup, "POST", "faults", json={"action": "infoDnsRecords", "count": 2, "kind": kind})
    assert r.status_code == 201
    assert client.dns_zone("example.com").name == "example.com"  # other actions unaffected
    for _ in range(2):
        with pytest.raises(Exception, match=rf"\({expect}\)"):
            client.dns_records("example.com")
    assert client.dns_records("example.com")
    assert control(netcup, "GET", "faults").json()["faults"] == []
    faulted = [c for c in control(netcup, "GET", "journal").json()["calls"] if c["fault"]]
    assert len(faulted) == 2 and all(c["statuscode"] == expect for c in faulted)


def test_fault_http_500_and_invalid_json(netcup, monkeypatch):
    point_client_at(monkeypatch, netcup)
    client = nc_dnsapi.Client(CUSTOMER, KEY, PASSWORD)
    assert control(netcup, "POST", "faults", json={"action": "infoDnsZone", "kind": "http_500"}).status_code == 201
    with pytest.raises(Exception, match=r"\(500\)"):
        client.dns_zone("example.com")
    assert control(netcup, "POST", "faults", json={"kind": "invalid_json"}).status_code == 201
    with pytest.raises(requests.exceptions.JSONDecodeError):
        client.dns_zone("example.com")
    assert client.dns_zone("example.com").name == "example.com"


def test_fault_delay_answers_normally_after_the_delay(netcup):
    assert control(netcup, "POST", "faults", json={"action": "login", "kind": "delay", "delay_ms": 400}).status_code == 201
    started = time.monotonic()
    login(netcup)
    assert time.monotonic() - started >= 0.4
    assert control(netcup, "GET", "journal").json()["calls"][-1]["fault"] == {"kind": "delay", "delay_ms": 400}


def test_bad_fault_is_refused(netcup):
    r = control(netcup, "POST", "faults", json={"action": "nope", "kind": "http_500"})
    assert r.status_code == 400
    r = control(netcup, "POST", "faults", json={"kind": "explode"})
    assert r.status_code == 400 and "session_invalid" in r.json()["error"]


def test_bad_zones_file_exits_2(tmp_path):
    bad = tmp_path / "zones.json"
    bad.write_text('{"zones":[{"name":"x.org","records":[{"hostname":"@","type":"BOGUS","destination":"d"}]}]}')
    r = run_failing(["netcup", "--port", "0", "--bind", "127.0.0.1", "--zones", str(bad)])
    assert r.returncode == 2
    assert "BOGUS" in r.stderr and str(bad) in r.stderr
