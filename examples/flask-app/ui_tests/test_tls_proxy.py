"""The TLS proxy: HTTPS with the run's CA, security headers, forwarded headers the app trusts."""

from __future__ import annotations

import json
import os
import ssl
from urllib.parse import urlsplit

import pytest
import requests

from conftest import PNG_MAGIC, UI, Screens, app_url, base_url_from_env, http, requires_tls


@requires_tls
@pytest.mark.smoke
def test_page_is_served_over_tls_with_security_headers(ui: UI) -> None:
    response = ui.goto("/admin/login", "login")
    assert ui.page.url.startswith("https://"), ui.page.url
    headers = response.all_headers()
    hsts = headers.get("strict-transport-security", "")
    assert "max-age=" in hsts and int(hsts.split("max-age=")[1].split(";")[0]) > 0, hsts
    assert headers.get("x-content-type-options") == "nosniff"
    assert headers.get("x-frame-options", "").upper() == "SAMEORIGIN"
    assert headers.get("referrer-policy")

    # Chromium accepted the chain through its NSS db: the certificate names our host and
    # was issued by the run CA.
    details = response.security_details()
    assert details is not None
    assert details["protocol"] in ("TLS 1.2", "TLS 1.3")
    assert details["subjectName"] == urlsplit(ui.page.url).hostname
    ca_file = os.environ.get("HARNESS_CA_FILE")
    if ca_file:
        ca = ssl._ssl._test_decode_cert(ca_file)  # stdlib, no extra package needed
        ca_cn = dict(x[0] for x in ca["subject"]).get("commonName")
        assert details["issuer"] == ca_cn


@requires_tls
@pytest.mark.smoke
def test_app_sees_https_through_forwarded_headers(ui: UI) -> None:
    ui.goto("/debug/request", "debug-request")
    seen = json.loads(ui.page.locator("body").inner_text())
    host = urlsplit(base_url_from_env()).netloc
    assert seen["forwarded_headers"].get("X-Forwarded-Proto") == "https", seen
    assert seen["scheme"] == "https" and seen["is_secure"] is True, seen
    assert seen["host"] == host
    assert seen["url"].startswith(f"https://{host}/debug/request")


@requires_tls
def test_certificate_chains_to_the_run_ca_only() -> None:
    url = app_url("/health")
    ca_file = os.environ.get("HARNESS_CA_FILE")
    if ca_file:
        answer = requests.get(url, verify=ca_file, timeout=30)
        assert answer.status_code == 200 and answer.json() == {"status": "ok"}
    # Public roots alone must not accept it: proof that verification is on and that the
    # certificate really comes from the run's CA, not from some public one.
    import certifi  # requests' own dependency

    with pytest.raises(requests.exceptions.SSLError):
        requests.get(url, verify=certifi.where(), timeout=30)


@requires_tls
@pytest.mark.smoke
def test_plain_http_redirects_to_https() -> None:
    host = urlsplit(base_url_from_env()).hostname
    answer = http().get(f"http://{host}/health?x=1", allow_redirects=False, timeout=30)
    assert answer.status_code == 301
    assert answer.headers["Location"] == f"https://{host}/health?x=1"


def test_screenshot_helper_writes_named_pngs(ui: UI, screens: Screens) -> None:
    ui.goto("/admin/login", "login-page")
    [path] = screens.paths
    assert path.parent == screens.dir
    assert path.name == "test_tls_proxy.test_screenshot_helper_writes_named_pngs_chromium-01-login-page.png"
    assert path.read_bytes().startswith(PNG_MAGIC) and path.stat().st_size > 1000
