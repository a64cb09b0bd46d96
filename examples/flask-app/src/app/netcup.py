"""Client for the Netcup CCP DNS JSON API (the subset a DNS updater needs)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from . import envconf

log = logging.getLogger(__name__)

ENDPOINT_PATH = "/run/webservice/servers/endpoint.php"
STATUS_SESSION_INVALID = 4001


@dataclass(frozen=True)
class NetcupConfig:
    url: str
    customer_number: str
    api_key: str
    api_password: str
    domain: str

    @classmethod
    def from_env(cls) -> "NetcupConfig | None":
        names = ("NETCUP_API_URL", "NETCUP_CUSTOMER_NUMBER", "NETCUP_API_KEY",
                 "NETCUP_API_PASSWORD", "NETCUP_DOMAIN")
        values = [envconf.lookup(n) for n in names]
        if not all(values):
            return None
        return cls(endpoint_url(values[0]), *values[1:])


def endpoint_url(url: str) -> str:
    """Accept either the full endpoint URL or just the service's base URL."""
    parts = urlsplit(url)
    if parts.path.endswith("endpoint.php"):
        return url if parts.query else url + "?JSON"
    return url.rstrip("/") + ENDPOINT_PATH + "?JSON"


class NetcupError(Exception):
    def __init__(self, action: str, statuscode: int | None, message: str):
        super().__init__(f"{action}: {message}" + (f" (status {statuscode})" if statuscode else ""))
        self.action = action
        self.statuscode = statuscode


@dataclass
class UpdateResult:
    record: dict[str, Any]
    records: list[dict[str, Any]]
    logins: int


class NetcupClient:
    def __init__(self, config: NetcupConfig, http: requests.Session | None = None, timeout: float = 15):
        self.config = config
        self.http = http or requests.Session()
        self.timeout = timeout
        self.session_id: str | None = None
        self.logins = 0

    def _post(self, action: str, param: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self.http.post(
                self.config.url, json={"action": action, "param": param}, timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise NetcupError(action, None, f"request failed: {exc.__class__.__name__}: {exc}") from exc
        if response.status_code != 200:
            raise NetcupError(action, None, f"HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError as exc:
            raise NetcupError(action, None, "answer is not JSON") from exc
        if not isinstance(body, dict):
            raise NetcupError(action, None, "answer is not a JSON object")
        return body

    def _check(self, action: str, body: dict[str, Any]) -> Any:
        if body.get("status") != "success":
            raise NetcupError(
                action, _int_or_none(body.get("statuscode")),
                str(body.get("longmessage") or body.get("shortmessage") or "error"),
            )
        return body.get("responsedata")

    def login(self) -> None:
        data = self._check("login", self._post("login", {
            "customernumber": self.config.customer_number,
            "apikey": self.config.api_key,
            "apipassword": self.config.api_password,
        }))
        if not isinstance(data, dict) or not data.get("apisessionid"):
            raise NetcupError("login", None, "no apisessionid in the answer")
        self.session_id = str(data["apisessionid"])
        self.logins += 1

    def logout(self) -> None:
        if self.session_id is None:
            return
        try:
            self._post("logout", self._auth())
        except NetcupError as exc:
            log.info("netcup logout failed (ignored): %s", exc)
        self.session_id = None

    def _auth(self) -> dict[str, Any]:
        return {
            "customernumber": self.config.customer_number,
            "apikey": self.config.api_key,
            "apisessionid": self.session_id,
        }

    def call(self, action: str, param: dict[str, Any], relogin_allowed: bool = True) -> Any:
        """An authenticated call. Netcup answers 4001 for sessions it dropped, which real
        clients see now and then; one fresh login and a retry is what they do."""
        if self.session_id is None:
            self.login()
        body = self._post(action, {**param, **self._auth()})
        if relogin_allowed and _int_or_none(body.get("statuscode")) == STATUS_SESSION_INVALID:
            log.warning("netcup %s answered 4001; logging in again and retrying once", action)
            self.login()
            body = self._post(action, {**param, **self._auth()})
        return self._check(action, body)

    def update_record(self, hostname: str, rtype: str, destination: str,
                      priority: str | None = None) -> UpdateResult:
        """Create or update the one record for (hostname, type); other records stay untouched."""
        domain = self.config.domain
        data = self.call("infoDnsRecords", {"domainname": domain})
        existing = _records(data)
        record: dict[str, Any] = {
            "hostname": hostname, "type": rtype, "destination": destination,
            "priority": priority or "0", "deleterecord": False,
        }
        for current in existing:
            if current.get("hostname") == hostname and str(current.get("type", "")).upper() == rtype:
                record["id"] = str(current["id"])
                break
        data = self.call("updateDnsRecords", {
            "domainname": domain, "dnsrecordset": {"dnsrecords": [record]},
        })
        records = _records(data)
        # Match by id when updating; a new record is found by content, compared the way DNS
        # compares names, since the service may normalise case or a trailing dot.
        wanted = _dns_text(destination)
        stored = next(
            (r for r in records
             if ("id" in record and str(r.get("id")) == record["id"])
             or ("id" not in record and r.get("hostname") == hostname
                 and str(r.get("type", "")).upper() == rtype
                 and _dns_text(str(r.get("destination", ""))) == wanted)),
            None,
        )
        if stored is None:
            raise NetcupError("updateDnsRecords", None, "the answer does not contain the record")
        return UpdateResult(record=stored, records=records, logins=self.logins)


def _records(data: Any) -> list[dict[str, Any]]:
    if isinstance(data, dict) and isinstance(data.get("dnsrecords"), list):
        return [r for r in data["dnsrecords"] if isinstance(r, dict)]
    return []


def _dns_text(value: str) -> str:
    return value.strip().rstrip(".").lower()


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
