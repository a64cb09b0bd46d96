"""GeoIP country lookups, cross-checked against the GeoIP2 mock over verified HTTPS."""

from __future__ import annotations

import os
from urllib.parse import quote

import pytest
import requests
from playwright.sync_api import expect

from conftest import UI, api_headers, app_url, geoip_auth, geoip_base, http

pytestmark = [
    pytest.mark.mocks,
    # MaxMind's client (the app's) only speaks HTTPS; without TLS the stack's GeoIP mock is plain
    # HTTP and no lookup can work, so these tests do not apply.
    pytest.mark.skipif(not os.environ.get("MOCK_GEOIP_API_URL", "https").startswith("https"),
                       reason="the GeoIP mock runs without TLS (--no-tls)"),
]


def mock_country(ip: str) -> requests.Response:
    """Ask the mock directly, as MaxMind's client would: HTTPS, Basic auth. The certificate is
    checked against the run CA alone when the harness names it, else against the CA bundle."""
    url = f"{geoip_base()}/geoip/v2.1/country/{ip}"
    assert url.startswith("https://"), f"the GeoIP mock must speak HTTPS: {url}"
    verify = os.environ.get("HARNESS_CA_FILE") or True
    return http().get(url, auth=geoip_auth(), verify=verify, timeout=15)


@pytest.mark.parametrize("ip,iso", [("81.2.69.160", "GB"), ("2001:67c:2e8::1", "NL")])
def test_geo_page_shows_the_country_of_an_explicit_address(admin_ui: UI, ip: str, iso: str) -> None:
    # Through the form, the way a person uses it.
    admin_ui.goto("/geo", "geo-form")
    admin_ui.page.fill("#ip", ip)
    admin_ui.submit(admin_ui.page.locator("#geo-form button[type=submit]"), f"geo-{ip}")
    expect(admin_ui.page.locator("#geo-ip")).to_have_text(ip)
    shown_iso = admin_ui.page.locator("#country-iso").inner_text().strip()
    shown_name = admin_ui.page.locator("#country-name").inner_text().strip()

    answer = mock_country(ip)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("application/vnd.maxmind.com-country+json")
    country = answer.json()["country"]
    assert (shown_iso, shown_name) == (country["iso_code"], country["names"]["en"])
    assert shown_iso == iso


def test_geo_api_matches_the_mock() -> None:
    ip = "81.2.69.160"
    response = http().get(app_url(f"/api/geo/{ip}"), headers=api_headers(), timeout=60)
    assert response.status_code == 200, response.text
    app = response.json()
    mock = mock_country(ip).json()
    assert app["ip"] == mock["traits"]["ip_address"] == ip
    assert app["country_iso"] == mock["country"]["iso_code"] == "GB"
    assert app["continent_code"] == mock["continent"]["code"]
    assert app["network"] == mock["traits"]["network"]


# MaxMind's client raises AddressNotFoundError for both codes, so the app answers 404 for both.
@pytest.mark.parametrize("ip,mock_status,mock_code,app_status", [
    ("10.1.2.3", 400, "IP_ADDRESS_RESERVED", 404),   # private: MaxMind refuses it
    ("9.9.9.9", 404, "IP_ADDRESS_NOT_FOUND", 404),   # public, but not in the mock's table
])
def test_geo_errors_of_the_service_reach_the_page(admin_ui: UI, ip: str, mock_status: int,
                                                   mock_code: str, app_status: int) -> None:
    answer = mock_country(ip)
    assert (answer.status_code, answer.json()["code"]) == (mock_status, mock_code)

    response = admin_ui.goto(f"/geo?ip={quote(ip)}", f"geo-error-{ip}")
    assert response.status == app_status
    # The page passes on the service's own explanation.
    expect(admin_ui.page.locator(".flash.error")).to_contain_text(answer.json()["error"])
    expect(admin_ui.page.locator("#geo-result")).to_have_count(0)


def test_geo_mock_refuses_wrong_credentials() -> None:
    """The cross-checks above mean something only if the mock really checks the account."""
    url = f"{geoip_base()}/geoip/v2.1/country/81.2.69.160"
    verify = os.environ.get("HARNESS_CA_FILE") or True
    answer = http().get(url, auth=(geoip_auth()[0], "wrong-key"), verify=verify, timeout=15)
    assert answer.status_code == 401
    assert answer.json()["code"] == "AUTHORIZATION_INVALID"
