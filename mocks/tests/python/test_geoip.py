"""GeoIP mock against MaxMind's official `geoip2` client, over HTTPS with verification on."""
import json
import socket

import certifi
import geoip2.errors
import geoip2.webservice
import pytest
import requests

from .mockproc import run_failing

ERROR_TYPE = "application/vnd.maxmind.com-error+json; charset=UTF-8; version=2.1"


@pytest.fixture
def geoip(mock_factory, tls_files, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", tls_files["ca"])
    monkeypatch.setenv("SSL_CERT_FILE", tls_files["ca"])
    return mock_factory(
        ["geoip", "--port", "0", "--tls-cert", tls_files["cert"], "--tls-key", tls_files["key"]]
    )


@pytest.fixture
def client(geoip):
    with geoip2.webservice.Client(42, "test-license-key", host=geoip.addr("https")) as c:
        yield c


def test_city_ipv4_london(client):
    r = client.city("81.2.69.160")
    assert r.country.iso_code == "GB"
    assert r.country.name == "United Kingdom"
    assert r.city.name == "London"
    assert r.city.geoname_id == 2643743
    assert r.subdivisions.most_specific.iso_code == "ENG"
    assert r.continent.code == "EU"
    assert r.location.time_zone == "Europe/London"
    assert r.location.latitude == pytest.approx(51.5142)
    assert r.postal.code
    assert str(r.traits.ip_address) == "81.2.69.160"
    assert str(r.traits.network) == "81.2.69.160/27"
    assert r.traits.autonomous_system_number == 20712


def test_country_ipv4_google(client):
    r = client.country("8.8.8.8")
    assert r.country.iso_code == "US"
    assert r.registered_country.iso_code == "US"
    assert r.continent.code == "NA"
    assert r.maxmind.queries_remaining > 0
    assert str(r.traits.ip_address) == "8.8.8.8"
    assert not r.country.is_in_european_union


def test_insights_ipv6_google(client):
    r = client.insights("2001:4860:4860::8888")
    assert r.country.iso_code == "US"
    assert r.traits.autonomous_system_number == 15169
    assert r.traits.autonomous_system_organization == "Google LLC"
    assert str(r.traits.ip_address) == "2001:4860:4860::8888"
    assert str(r.traits.network) == "2001:4860:4860::/48"
    assert r.traits.user_type == "business"


def test_city_ipv6_european(client):
    r = client.city("2001:67c:2e8::1")
    assert r.country.iso_code == "NL"
    assert r.country.is_in_european_union
    assert r.city.name == "Amsterdam"


@pytest.mark.parametrize("ip", ["10.0.0.1", "192.168.1.20", "127.0.0.1", "192.0.2.1", "203.0.113.5", "2001:db8::1", "::1"])
def test_reserved_addresses_raise_address_not_found(client, ip):
    with pytest.raises(geoip2.errors.AddressNotFoundError) as e:
        client.city(ip)
    assert "not a public IP address" in str(e.value)


def test_unknown_address_raises_address_not_found(client):
    with pytest.raises(geoip2.errors.AddressNotFoundError) as e:
        client.country("9.9.9.9")
    assert "not in our database" in str(e.value)


def test_bad_license_key_raises_authentication_error(geoip):
    with geoip2.webservice.Client(42, "wrong-key", host=geoip.addr("https")) as c:
        with pytest.raises(geoip2.errors.AuthenticationError):
            c.city("8.8.8.8")


def test_raw_request_without_credentials_gets_401_with_maxmind_code(geoip, tls_files):
    r = requests.get(geoip.url("/geoip/v2.1/city/8.8.8.8", "https"), verify=tls_files["ca"])
    assert r.status_code == 401
    assert r.headers["Content-Type"] == ERROR_TYPE
    body = r.json()
    assert body["code"] == "ACCOUNT_ID_REQUIRED"
    assert body["error"]


def test_raw_request_with_wrong_credentials_is_authorization_invalid(geoip, tls_files):
    r = requests.get(
        geoip.url("/geoip/v2.1/country/8.8.8.8", "https"), auth=("42", "nope"), verify=tls_files["ca"]
    )
    assert r.status_code == 401
    assert r.json()["code"] == "AUTHORIZATION_INVALID"
    r = requests.get(
        geoip.url("/geoip/v2.1/country/8.8.8.8", "https"), auth=("42", ""), verify=tls_files["ca"]
    )
    assert r.json()["code"] == "LICENSE_KEY_REQUIRED"


def test_bad_ip_syntax_is_ip_address_invalid(geoip, tls_files):
    r = requests.get(
        geoip.url("/geoip/v2.1/city/999.1.1.1", "https"),
        auth=("42", "test-license-key"),
        verify=tls_files["ca"],
    )
    assert r.status_code == 400
    assert r.headers["Content-Type"] == ERROR_TYPE
    assert r.json()["code"] == "IP_ADDRESS_INVALID"


@pytest.mark.parametrize("service", ["country", "city", "insights"])
def test_content_types_are_exact(geoip, tls_files, service):
    r = requests.get(
        geoip.url(f"/geoip/v2.1/{service}/8.8.8.8", "https"),
        auth=("42", "test-license-key"),
        verify=tls_files["ca"],
    )
    assert r.status_code == 200
    assert (
        r.headers["Content-Type"]
        == f"application/vnd.maxmind.com-{service}+json; charset=UTF-8; version=2.1"
    )


def test_verification_stays_on(geoip):
    # Without our CA the handshake must fail: the mock really serves TLS with that certificate.
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(geoip.url("/health", "https"), verify=certifi.where())


def test_health(geoip, tls_files):
    r = requests.get(geoip.url("/health", "https"), verify=tls_files["ca"])
    assert r.status_code == 200
    assert r.json()["status"] == "ok"


def test_me_is_the_caller_address(client):
    # The caller is 127.0.0.1, which the real service would call reserved, and says so by address.
    with pytest.raises(geoip2.errors.AddressNotFoundError) as e:
        client.city("me")
    assert "127.0.0.1" in str(e.value)


def test_data_file_adds_entries_and_can_place_the_caller(mock_factory, tls_files, tmp_path, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", tls_files["ca"])
    data = tmp_path / "geo.json"
    loc = {
        "continent_code": "EU", "continent_geoname_id": 6255148, "continent_name": "Europe",
        "country_iso_code": "DE", "country_geoname_id": 2921044, "country_name": "Germany",
        "is_in_european_union": True, "city_name": "Berlin", "city_geoname_id": 2950159,
        "latitude": 52.52, "longitude": 13.40, "time_zone": "Europe/Berlin",
    }
    data.write_text(json.dumps({"entries": [
        {"ip": "127.0.0.1", **loc},
        {"network": "9.9.9.0/24", **loc, "country_iso_code": "CH", "country_name": "Switzerland"},
    ]}))
    m = mock_factory(["geoip", "--port", "0", "--tls-cert", tls_files["cert"], "--tls-key", tls_files["key"], "--data", str(data)])
    with geoip2.webservice.Client(42, "test-license-key", host=m.addr("https")) as c:
        me = c.city("me")
        assert str(me.traits.ip_address) == "127.0.0.1"
        assert me.city.name == "Berlin"
        assert c.country("9.9.9.9").country.iso_code == "CH"
        # Built-in entries are still there.
        assert c.country("1.1.1.1").country.iso_code == "AU"


def test_plain_http_without_certificate(mock_factory):
    m = mock_factory(["geoip", "--port", "0"])
    assert "http" in m.info
    r = requests.get(m.url("/geoip/v2.1/country/8.8.8.8"), auth=("42", "test-license-key"))
    assert r.json()["country"]["iso_code"] == "US"


def test_bad_data_file_exits_2_and_names_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"entries": [\n {"ip": "1.2.3.4",}\n]}')
    r = run_failing(["geoip", "--port", "0", "--bind", "127.0.0.1", "--data", str(bad)])
    assert r.returncode == 2
    assert str(bad) in r.stderr
    assert "line 2" in r.stderr


def test_port_in_use_exits_3():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = run_failing(["geoip", "--port", str(port), "--bind", "127.0.0.1"])
    assert r.returncode == 3
    assert "cannot bind" in r.stderr
