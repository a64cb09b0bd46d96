"""Country lookup through MaxMind's GeoIP2 web service with the official client."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

import requests

from . import envconf


@dataclass(frozen=True)
class GeoConfig:
    account_id: int
    license_key: str
    host: str

    @classmethod
    def from_env(cls) -> "GeoConfig | None":
        account = envconf.lookup("GEOIP_ACCOUNT_ID")
        key = envconf.lookup("GEOIP_LICENSE_KEY")
        if not account or not key:
            return None
        try:
            account_id = int(account)
        except ValueError:
            return None
        return cls(account_id, key, envconf.lookup("GEOIP_HOST") or "geoip.maxmind.com")


class GeoError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code


def parse_ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError as exc:
        raise GeoError(400, "IP_ADDRESS_INVALID", f"{value!r} is not an IPv4 or IPv6 address") from exc


def lookup_country(config: GeoConfig, ip: str) -> dict[str, Any]:
    address = parse_ip(ip)
    # Imported here: geoip2.webservice pulls in aiohttp, about 0.2 s of every Passenger
    # spawn for a page few requests use.
    import geoip2.errors
    import geoip2.webservice

    # The client always speaks https://{host}; the CA bundle comes from REQUESTS_CA_BUNDLE.
    with geoip2.webservice.Client(config.account_id, config.license_key, host=config.host,
                                  timeout=15) as client:
        try:
            answer = client.country(address)
        except geoip2.errors.AddressNotFoundError as exc:
            raise GeoError(404, "IP_ADDRESS_NOT_FOUND", str(exc)) from exc
        except (geoip2.errors.AuthenticationError, geoip2.errors.PermissionRequiredError,
                geoip2.errors.OutOfQueriesError) as exc:
            raise GeoError(502, "GEOIP_ACCOUNT", f"GeoIP service refused the account: {exc}") from exc
        except geoip2.errors.InvalidRequestError as exc:
            raise GeoError(400, "IP_ADDRESS_REJECTED", str(exc)) from exc
        except (geoip2.errors.GeoIP2Error, requests.RequestException) as exc:
            # The client lets transport errors (refused, TLS verification) through as
            # requests exceptions; to the caller they are the same outage.
            raise GeoError(502, "GEOIP_UNAVAILABLE", f"GeoIP service failed: {exc}") from exc
    return {
        "ip": address,
        "country_iso": answer.country.iso_code,
        "country_name": answer.country.name,
        "continent_code": answer.continent.code,
        "is_in_european_union": bool(answer.registered_country.is_in_european_union
                                     or answer.country.is_in_european_union),
        "network": str(answer.traits.network) if answer.traits.network else None,
        "queries_remaining": answer.maxmind.queries_remaining,
    }
