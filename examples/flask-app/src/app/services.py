"""Use cases shared by the admin forms and the JSON API: validate, call out, record."""

from __future__ import annotations

import ipaddress
import logging
import re
import sqlite3
from dataclasses import dataclass
from typing import Any

from . import db, mailer, netcup

log = logging.getLogger(__name__)

RECORD_TYPES = ("A", "AAAA", "CNAME", "TXT", "MX")
HOST_LABEL_RE = re.compile(r"^(@|\*|(\*\.)?[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
                           r"(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*)$")
FQDN_RE = re.compile(r"^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
                     r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?$")


class InputError(ValueError):
    pass


@dataclass(frozen=True)
class RecordRequest:
    hostname: str
    type: str
    destination: str
    priority: str | None = None


def parse_record(data: dict[str, Any]) -> RecordRequest:
    hostname = str(data.get("hostname") or "").strip()
    rtype = str(data.get("type") or "").strip().upper()
    destination = str(data.get("destination") or "").strip()
    priority_raw = data.get("priority")
    priority = None if priority_raw in (None, "") else str(priority_raw).strip()
    if not hostname or len(hostname) > 253 or not HOST_LABEL_RE.match(hostname):
        raise InputError("hostname: use @, * or labels of letters, digits, '-' and '_'")
    if rtype not in RECORD_TYPES:
        raise InputError(f"type: one of {', '.join(RECORD_TYPES)}")
    if not destination:
        raise InputError("destination: required")
    if rtype in ("A", "AAAA"):
        try:
            address = ipaddress.ip_address(destination)
        except ValueError as exc:
            raise InputError(f"destination: {destination!r} is not an IP address") from exc
        if address.version != (4 if rtype == "A" else 6):
            raise InputError(f"destination: an {rtype} record needs an IPv{4 if rtype == 'A' else 6} address")
        destination = str(address)
    elif rtype in ("CNAME", "MX"):
        if len(destination) > 253 or not FQDN_RE.match(destination):
            raise InputError("destination: not a host name")
    elif len(destination) > 255 or any(ord(c) < 32 for c in destination):
        raise InputError("destination: TXT values are at most 255 printable characters")
    if rtype == "MX":
        if priority is None or not priority.isdigit() or int(priority) > 65535:
            raise InputError("priority: an MX record needs a priority from 0 to 65535")
    elif priority is not None:
        raise InputError("priority: only MX records have a priority")
    return RecordRequest(hostname, rtype, destination, priority)


@dataclass
class DnsOutcome:
    ok: bool
    record: dict[str, Any] | None
    logins: int
    message: str
    statuscode: int | None
    notification: str


def update_dns(conn: sqlite3.Connection, config: netcup.NetcupConfig, request: RecordRequest,
               actor: str) -> DnsOutcome:
    client = netcup.NetcupClient(config)
    try:
        result = client.update_record(request.hostname, request.type, request.destination,
                                      request.priority)
        outcome = DnsOutcome(True, result.record, result.logins, "updated", 2000, "")
    except netcup.NetcupError as exc:
        outcome = DnsOutcome(False, None, client.logins, str(exc), exc.statuscode, "")
    finally:
        client.logout()
    conn.execute(
        "INSERT INTO dns_updates (created_at, actor, domain, hostname, type, destination, status,"
        " statuscode, logins, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (db.now_iso(), actor, config.domain, request.hostname, request.type, request.destination,
         "ok" if outcome.ok else "error", outcome.statuscode, outcome.logins, outcome.message),
    )
    conn.commit()
    log.info("dns update %s %s.%s by %s: %s (logins=%d)", request.type, request.hostname,
             config.domain, actor, outcome.message, outcome.logins)
    if outcome.ok:
        fqdn = config.domain if request.hostname == "@" else f"{request.hostname}.{config.domain}"
        outcome.notification = notify(
            conn, actor, None, f"DNS updated: {request.type} {fqdn}",
            f"The {request.type} record of {fqdn} now points to {request.destination}.\n"
            f"Changed by {actor}.\n",
        )
    return outcome


def notify(conn: sqlite3.Connection, actor: str, to: str | None, subject: str, body: str) -> str:
    """Send a notification and record it. Returns "sent" or "error: ..."; never raises for
    delivery problems, because a DNS change must not be reported as failed over a mail."""
    recipient = to or "?"
    try:
        config = mailer.load_config(conn)
        recipient = to or config.notify_to
        status, message = "sent", mailer.send(config, recipient, subject, body)
    except mailer.MailError as exc:
        status, message = "error", str(exc)
    conn.execute(
        "INSERT INTO notifications (created_at, actor, recipient, subject, status, message)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (db.now_iso(), actor, recipient, subject, status, message),
    )
    conn.commit()
    log.info("notification %r to %s by %s: %s %s", subject, recipient, actor, status,
             "" if status == "sent" else message)
    return "sent" if status == "sent" else f"error: {message}"
