"""The outside world: mail (SMTP), DNS (Netcup's CCP API) and GeoIP (MaxMind's web service).

Each reads its address from the shop's own SHOP_* variables, so the same code talks to the real
services in production and to the mocks on a developer's machine (shop-dev-mailpit, ...).
"""

from __future__ import annotations

import os
import smtplib
import uuid
from email.message import EmailMessage

import requests


class ServiceError(Exception):
    pass


def _env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if not value:
        raise ServiceError(f"{name} is not configured")
    return value


def send_mail(to: str, subject: str, text: str) -> str:
    """Sends one message; returns its Message-ID."""
    msg = EmailMessage()
    msg["From"] = os.environ.get("SHOP_MAIL_FROM", "shop@shop.example")
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@shop.example>"
    msg.set_content(text)
    host = _env("SHOP_MAIL_HOST")
    port = int(os.environ.get("SHOP_MAIL_PORT", "25"))
    try:
        with smtplib.SMTP(host, port, timeout=10) as smtp:
            smtp.send_message(msg)
    except (OSError, smtplib.SMTPException) as exc:
        raise ServiceError(f"mail to {to} failed: {exc}") from exc
    return msg["Message-ID"]


class Netcup:
    """The few CCP actions the shop needs: login, updateDnsRecords, logout."""

    def __init__(self) -> None:
        self.endpoint = _env("SHOP_NETCUP_ENDPOINT")
        self.creds = {
            "customernumber": _env("SHOP_NETCUP_CUSTOMER"),
            "apikey": _env("SHOP_NETCUP_APIKEY"),
        }
        self.password = _env("SHOP_NETCUP_APIPASSWORD")

    def _call(self, action: str, param: dict) -> dict:
        try:
            r = requests.post(self.endpoint, json={"action": action, "param": param}, timeout=15)
            r.raise_for_status()
            body = r.json()
        except (requests.RequestException, ValueError) as exc:
            raise ServiceError(f"netcup {action}: {exc}") from exc
        if body.get("status") != "success":
            raise ServiceError(f"netcup {action}: {body.get('statuscode')} {body.get('longmessage')}")
        return body.get("responsedata") or {}

    def set_record(self, zone: str, hostname: str, rtype: str, destination: str) -> None:
        session = self._call("login", {**self.creds, "apipassword": self.password})["apisessionid"]
        auth = {**self.creds, "apisessionid": session}
        try:
            self._call("updateDnsRecords", {**auth, "domainname": zone, "dnsrecordset": {"dnsrecords": [
                {"hostname": hostname, "type": rtype, "destination": destination, "deleterecord": False}
            ]}})
        finally:
            try:
                self._call("logout", auth)
            except ServiceError:
                pass


def country_of(ip: str) -> dict:
    """MaxMind GeoIP2 Country for `ip`: {"iso_code", "name"}. HTTPS only, as the real service."""
    host = _env("SHOP_GEOIP_HOST", "geoip.maxmind.com")
    auth = (_env("SHOP_GEOIP_ACCOUNT"), _env("SHOP_GEOIP_LICENSE"))
    try:
        r = requests.get(f"https://{host}/geoip/v2.1/country/{ip}", auth=auth, timeout=15)
    except requests.RequestException as exc:
        raise ServiceError(f"geoip: {exc}") from exc
    if r.status_code != 200:
        try:
            raise ServiceError(f"geoip: {r.json().get('code')}")
        except ValueError:
            raise ServiceError(f"geoip: HTTP {r.status_code}") from None
    country = r.json().get("country", {})
    return {"iso_code": country.get("iso_code"), "name": country.get("names", {}).get("en")}
