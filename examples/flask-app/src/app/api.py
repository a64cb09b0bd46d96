"""JSON API for API clients (bearer token from the state file's clients[])."""

from __future__ import annotations

import sqlite3
from typing import Any

from flask import Blueprint, g, jsonify, request

from . import db, geo, mailer, netcup, services
from .security import token_required

bp = Blueprint("api", __name__, url_prefix="/api")


def _error(status: int, error: str, detail: str) -> Any:
    return jsonify(error=error, detail=detail), status


def _json_body() -> dict[str, Any] | None:
    data = request.get_json(silent=True)
    return data if isinstance(data, dict) else None


@bp.get("/whoami")
@token_required
def whoami() -> Any:
    return jsonify(client_id=g.api_client)


@bp.post("/dns")
@token_required
def dns_update() -> Any:
    data = _json_body()
    if data is None:
        return _error(400, "bad_request", "send a JSON object {hostname, type, destination}")
    try:
        record = services.parse_record(data)
    except services.InputError as exc:
        return _error(400, "invalid_record", str(exc))
    config = netcup.NetcupConfig.from_env()
    if config is None:
        return _error(503, "not_configured", "set NETCUP_API_URL, NETCUP_CUSTOMER_NUMBER, "
                      "NETCUP_API_KEY, NETCUP_API_PASSWORD and NETCUP_DOMAIN")
    outcome = services.update_dns(db.get(), config, record, f"client:{g.api_client}")
    body = {"status": "ok" if outcome.ok else "error", "domain": config.domain,
            "record": outcome.record, "logins": outcome.logins, "message": outcome.message,
            "statuscode": outcome.statuscode, "notification": outcome.notification}
    return jsonify(body), 200 if outcome.ok else 502


@bp.post("/writes")
@token_required
def record_write() -> Any:
    """Stores one row and answers 201 only after its commit: a client that got 201 may count
    on the row. `ref` is the client's own name for the write (unique)."""
    data = _json_body()
    ref = str((data or {}).get("ref") or "").strip()
    if not ref or len(ref) > 100 or any(ord(c) < 32 for c in ref):
        return _error(400, "invalid_ref", "send a JSON object {ref}: 1 to 100 printable characters")
    conn = db.get()
    try:
        with conn:
            cur = conn.execute(
                "INSERT INTO api_writes (created_at, client, ref) VALUES (?, ?, ?)",
                (db.now_iso(), g.api_client, ref),
            )
    except sqlite3.IntegrityError:
        return _error(409, "duplicate_ref", f"ref {ref!r} was written before")
    return jsonify(id=cur.lastrowid, ref=ref), 201


@bp.get("/geo/<path:ip>")
@token_required
def geo_lookup(ip: str) -> Any:
    config = geo.GeoConfig.from_env()
    try:
        geo.parse_ip(ip)
        if config is None:
            return _error(503, "not_configured", "set GEOIP_ACCOUNT_ID, GEOIP_LICENSE_KEY and GEOIP_HOST")
        return jsonify(geo.lookup_country(config, ip))
    except geo.GeoError as exc:
        return _error(exc.status, exc.code, str(exc))


@bp.post("/notify")
@token_required
def notify() -> Any:
    data = _json_body()
    if data is None:
        return _error(400, "bad_request", "send a JSON object {subject, body, to?}")
    subject = str(data.get("subject") or "").strip()
    text = str(data.get("body") or "")
    to = str(data.get("to") or "").strip() or None
    if not subject or len(subject) > 200 or any(ord(c) < 32 for c in subject):
        return _error(400, "invalid_subject", "subject: 1 to 200 printable characters")
    if not text.strip():
        return _error(400, "invalid_body", "body: required")
    if to is not None and not mailer.valid_address(to):
        return _error(400, "invalid_recipient", f"to: {to!r} is not a mail address")
    result = services.notify(db.get(), f"client:{g.api_client}", to, subject, text)
    if result != "sent":
        return _error(502, "mail_failed", result)
    return jsonify(status="sent")
