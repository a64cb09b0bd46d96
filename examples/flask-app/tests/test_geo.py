"""GeoIP lookups with the official geoip2 client against an HTTPS server on 127.0.0.1."""

import pytest

from conftest import CLIENT_TOKEN, ADMIN_PASSWORD, csrf_from, login
from fakes import FakeGeoIP, make_tls_certificate

AUTH = {"Authorization": f"Bearer {CLIENT_TOKEN}"}


@pytest.fixture
def geoip(tmp_path, monkeypatch):
    cert, key = make_tls_certificate(tmp_path)
    fake = FakeGeoIP(cert, key)
    monkeypatch.setenv("GEOIP_ACCOUNT_ID", "42")
    monkeypatch.setenv("GEOIP_LICENSE_KEY", "lic")
    monkeypatch.setenv("GEOIP_HOST", fake.host)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", cert)
    yield fake
    fake.close()


def test_api_returns_the_country(client, geoip):
    response = client.get("/api/geo/81.2.69.160", headers=AUTH)
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {
        "ip": "81.2.69.160", "country_iso": "GB", "country_name": "United Kingdom",
        "continent_code": "EU", "is_in_european_union": False, "network": "81.2.69.160/27",
        "queries_remaining": 999,
    }
    assert geoip.requests == ["/geoip/v2.1/country/81.2.69.160"]


def test_unknown_address_is_404(client, geoip):
    response = client.get("/api/geo/192.0.2.55", headers=AUTH)
    assert response.status_code == 404
    assert response.get_json()["error"] == "IP_ADDRESS_NOT_FOUND"


def test_rejected_account_is_502(client, geoip, monkeypatch):
    monkeypatch.setenv("GEOIP_LICENSE_KEY", "wrong")
    response = client.get("/api/geo/81.2.69.160", headers=AUTH)
    assert response.status_code == 502
    assert response.get_json()["error"] == "GEOIP_ACCOUNT"


def test_untrusted_certificate_is_refused(client, geoip, monkeypatch):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    response = client.get("/api/geo/81.2.69.160", headers=AUTH)
    assert response.status_code == 502
    assert "CERTIFICATE_VERIFY_FAILED" in response.get_json()["detail"]
    assert geoip.requests == []


def test_admin_page_shows_the_country(client, geoip):
    login(client)
    page = client.get("/admin/change-password")
    client.post("/admin/change-password", data={
        "csrf_token": csrf_from(page.get_data(as_text=True)), "current_password": ADMIN_PASSWORD,
        "new_password": "another-long-password", "confirm_password": "another-long-password"})
    response = client.get("/geo?ip=81.2.69.160")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'id="country-name">United Kingdom<' in html
    assert 'id="country-iso">GB<' in html
    # Without ?ip the form offers the caller's own address as the proxy reported it.
    own = client.get("/geo", headers={"X-Forwarded-For": "81.2.69.160"}).get_data(as_text=True)
    assert 'value="81.2.69.160"' in own


def test_settings_from_the_request_environ_fill_gaps(client, geoip, monkeypatch):
    # Apache's SetEnv reaches the app per request in the WSGI environ, not always in os.environ.
    monkeypatch.delenv("GEOIP_ACCOUNT_ID")
    monkeypatch.delenv("GEOIP_LICENSE_KEY")
    assert client.get("/api/geo/81.2.69.160", headers=AUTH).status_code == 503
    response = client.get("/api/geo/81.2.69.160", headers=AUTH, environ_base={
        "GEOIP_ACCOUNT_ID": "42", "GEOIP_LICENSE_KEY": "lic"})
    assert response.status_code == 200
    assert response.get_json()["country_iso"] == "GB"
