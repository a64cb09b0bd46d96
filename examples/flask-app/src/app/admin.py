"""Admin UI: login, forced password change, dashboard and the integration forms."""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path
from typing import Any

from flask import (Blueprint, current_app, flash, redirect, render_template, request,
                   session, url_for)

from . import db, geo, mailer, netcup, services
from .security import (admin_required, check_csrf, csrf_token, current_user, hash_password,
                       password_problems, verify_password)

bp = Blueprint("admin", __name__)
log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return hash_password("no user has this password")


@bp.app_context_processor
def _template_globals() -> dict[str, Any]:
    return {"csrf_token": csrf_token, "current_user": current_user,
            "target": current_app.config["DEPLOYMENT_TARGET"]}


def _safe_next(target: str | None) -> str:
    # Only same-site relative paths: "//evil.example" would be an open redirect.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("admin.dashboard")


@bp.route("/admin/login", methods=["GET", "POST"])
def login() -> Any:
    if request.method == "GET":
        return render_template("login.html", next=request.args.get("next", ""))
    check_csrf()
    username = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    user = db.get().execute(
        "SELECT id, password_hash, must_change_password FROM users WHERE username = ?",
        (username,),
    ).fetchone()
    # An unknown name costs the same hash computation as a wrong password, so response
    # times do not tell which user names exist.
    password_hash = user["password_hash"] if user is not None else _dummy_hash()
    if not verify_password(password_hash, password) or user is None:
        log.warning("login failed for %r from %s", username[:64], request.remote_addr)
        flash("Invalid user name or password.", "error")
        return render_template("login.html", next=request.form.get("next", "")), 401
    session.clear()
    session["user_id"] = user["id"]
    log.info("login ok for %r from %s", username, request.remote_addr)
    if user["must_change_password"]:
        return redirect(url_for("admin.change_password"))
    return redirect(_safe_next(request.form.get("next")))


@bp.post("/admin/logout")
def logout() -> Any:
    check_csrf()
    session.clear()
    flash("You are logged out.", "info")
    return redirect(url_for("admin.login"))


@bp.route("/admin/change-password", methods=["GET", "POST"])
def change_password() -> Any:
    user = current_user()
    if user is None:
        return redirect(url_for("admin.login", next=url_for("admin.change_password")))
    forced = bool(user["must_change_password"])
    if request.method == "GET":
        return render_template("change_password.html", forced=forced)
    check_csrf()
    current = request.form.get("current_password", "")
    new = request.form.get("new_password", "")
    confirm = request.form.get("confirm_password", "")
    problems = []
    if not verify_password(user["password_hash"], current):
        problems.append("The current password is wrong.")
    problems += password_problems(user["username"], current, new, confirm)
    if problems:
        for problem in problems:
            flash(problem, "error")
        return render_template("change_password.html", forced=forced), 400
    conn = db.get()
    conn.execute(
        "UPDATE users SET password_hash = ?, must_change_password = 0, password_changed_at = ?"
        " WHERE id = ?",
        (hash_password(new), db.now_iso(), user["id"]),
    )
    conn.commit()
    log.info("password changed for %r", user["username"])
    flash("Your password has been changed.", "info")
    return redirect(url_for("admin.dashboard"))


@bp.get("/admin/")
@bp.get("/admin")  # registered first, so url_for() builds the form without the slash
@admin_required
def dashboard() -> Any:
    conn = db.get()
    build_path = Path(current_app.config["APP_ROOT"]) / "build_info.json"
    try:
        build = json.loads(build_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        build = {}
    return render_template(
        "dashboard.html",
        build_id=build.get("build_id", "unknown") if isinstance(build, dict) else "unknown",
        users=conn.execute("SELECT username, is_admin, must_change_password FROM users"
                           " ORDER BY username").fetchall(),
        clients=conn.execute("SELECT client_id, description, is_primary FROM api_clients"
                             " ORDER BY client_id").fetchall(),
        updates=conn.execute("SELECT * FROM dns_updates ORDER BY id DESC LIMIT 10").fetchall(),
        notifications=conn.execute("SELECT * FROM notifications ORDER BY id DESC LIMIT 10").fetchall(),
        netcup_configured=netcup.NetcupConfig.from_env() is not None,
        geo_configured=geo.GeoConfig.from_env() is not None,
    )


@bp.route("/admin/dns", methods=["GET", "POST"])
@admin_required
def dns() -> Any:
    config = netcup.NetcupConfig.from_env()
    form = {"hostname": "", "type": "A", "destination": "", "priority": ""}
    if request.method == "GET":
        return render_template("dns.html", config=config, form=form, outcome=None,
                               types=services.RECORD_TYPES)
    check_csrf()
    form = {k: request.form.get(k, "") for k in form}
    if config is None:
        flash("Netcup is not configured (NETCUP_* environment variables).", "error")
        return render_template("dns.html", config=None, form=form, outcome=None,
                               types=services.RECORD_TYPES), 503
    try:
        record = services.parse_record(form)
    except services.InputError as exc:
        flash(str(exc), "error")
        return render_template("dns.html", config=config, form=form, outcome=None,
                               types=services.RECORD_TYPES), 400
    outcome = services.update_dns(db.get(), config, record, f"admin:{current_user()['username']}")
    flash("DNS record updated." if outcome.ok else f"DNS update failed: {outcome.message}",
          "info" if outcome.ok else "error")
    return render_template("dns.html", config=config, form=form, outcome=outcome,
                           types=services.RECORD_TYPES), 200 if outcome.ok else 502


@bp.get("/geo")
@bp.get("/admin/geo")
@admin_required
def geo_page() -> Any:
    ip = request.args.get("ip", "").strip()
    config = geo.GeoConfig.from_env()
    result, status = None, 200
    if ip:
        try:
            geo.parse_ip(ip)
            if config is None:
                flash("GeoIP is not configured (GEOIP_* environment variables).", "error")
                status = 503
            else:
                result = geo.lookup_country(config, ip)
        except geo.GeoError as exc:
            flash(f"{exc.code}: {exc}", "error")
            status = exc.status
    # Without ?ip the form is prefilled with the caller's address as ProxyFix resolved it.
    return render_template("geo.html", ip=ip or (request.remote_addr or ""), result=result,
                           configured=config is not None), status


@bp.route("/admin/notify", methods=["GET", "POST"])
@admin_required
def notify() -> Any:
    config = mailer.load_config(db.get())
    form = {"to": config.notify_to, "subject": "", "body": ""}
    if request.method == "GET":
        return render_template("notify.html", form=form, config=config)
    check_csrf()
    form = {k: request.form.get(k, "").strip() if k != "body" else request.form.get(k, "")
            for k in form}
    problems = []
    if not mailer.valid_address(form["to"]):
        problems.append("To: not a mail address.")
    if not form["subject"] or len(form["subject"]) > 200:
        problems.append("Subject: 1 to 200 characters.")
    if not form["body"].strip():
        problems.append("Message: required.")
    if problems:
        for problem in problems:
            flash(problem, "error")
        return render_template("notify.html", form=form, config=config), 400
    result = services.notify(db.get(), f"admin:{current_user()['username']}", form["to"],
                             form["subject"], form["body"])
    if result == "sent":
        flash(f"Notification sent to {form['to']}.", "info")
        return render_template("notify.html", form=form, config=config)
    flash(f"Sending failed: {result}", "error")
    return render_template("notify.html", form=form, config=config), 502
