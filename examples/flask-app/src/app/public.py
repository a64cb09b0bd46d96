"""Unauthenticated endpoints: the probes the harness and the deploy verification use."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, jsonify, redirect, request, url_for

from . import db

bp = Blueprint("public", __name__)
log = logging.getLogger(__name__)

VERSION_KEYS = ("build_id", "git_commit", "git_short_commit", "git_branch", "git_dirty",
                "target", "built_at", "harness_version")


@bp.get("/")
def index() -> Any:
    return redirect(url_for("admin.dashboard"))


@bp.get("/health")
def health() -> Any:
    try:
        conn = db.connect(current_app.config["DB_PATH"])
        try:
            conn.execute("SELECT count(*) FROM users").fetchone()
        finally:
            conn.close()
    except (db.DatabaseUnavailable, sqlite3.Error) as exc:
        log.error("health: database unavailable: %s", exc)
        return jsonify(status="error", detail="database unavailable"), 503
    return jsonify(status="ok")


@bp.get("/version")
def version() -> Any:
    # Read on every request: a deploy check must see the build that is on disk right now.
    path = Path(current_app.config["APP_ROOT"]) / "build_info.json"
    info: dict[str, Any] = {}
    try:
        with path.open(encoding="utf-8") as fh:
            loaded = json.load(fh)
        if isinstance(loaded, dict):
            info = loaded
        else:
            log.error("version: %s is not a JSON object", path)
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as exc:
        log.error("version: cannot read %s: %s", path, exc)
    answer = {key: info[key] for key in VERSION_KEYS if key in info}
    answer.setdefault("build_id", "unknown")
    answer.setdefault("git_commit", None)
    answer.setdefault("target", current_app.config["DEPLOYMENT_TARGET"])
    return jsonify(answer)


@bp.get("/debug/request")
def debug_request() -> Any:
    """What the app sees of the request after ProxyFix; the TLS proxy tests compare it with
    what they sent. It echoes only the caller's own request, so it reveals nothing."""
    forwarded = {name: value for name, value in request.headers.items()
                 if name.lower().startswith("x-forwarded-")}
    return jsonify(
        scheme=request.scheme,
        host=request.host,
        url=request.url,
        remote_addr=request.remote_addr,
        is_secure=request.is_secure,
        forwarded_headers=forwarded,
        server_software=request.environ.get("SERVER_SOFTWARE"),
        pid=os.getpid(),
    )
