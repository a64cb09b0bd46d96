"""The JSON API's bearer tokens come from the state file's clients[]; the probes report the build."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import expect

from conftest import UI, api_headers, app_url, http, netcup_journal_mark, primary_client, read_state


def test_api_token_from_state_file_identifies_the_client() -> None:
    client = primary_client()
    token = client["secret_key"]
    assert token.startswith("naf_"), "state file token is not in the naf_<alias>_<secret> format"

    session = http()
    response = session.get(app_url("/api/whoami"), headers=api_headers(), timeout=30)
    assert response.status_code == 200, response.text
    assert response.json() == {"client_id": client["client_id"]}

    # Same alias, other secret: the app must check the whole token, not only look up the alias.
    alias_part = token.rsplit("_", 1)[0]
    forged = alias_part + "_" + ("A" * 64 if not token.endswith("A" * 64) else "B" * 64)
    for headers in ({}, {"Authorization": f"Bearer {forged}"}, {"Authorization": f"Basic {token}"}):
        denied = session.get(app_url("/api/whoami"), headers=headers, timeout=30)
        assert denied.status_code == 401, (headers.keys(), denied.status_code)
        assert denied.headers.get("WWW-Authenticate", "").startswith("Bearer")


def test_probes_report_the_deployed_build(ui: UI) -> None:
    session = http()
    health = session.get(app_url("/health"), timeout=30)
    assert health.status_code == 200 and health.json() == {"status": "ok"}

    version = session.get(app_url("/version"), timeout=30).json()
    assert version["target"] == os.environ.get("DEPLOYMENT_TARGET", "local")
    # The harness writes build_info.json into every package; "unknown" means it is missing.
    assert version["build_id"] != "unknown", version
    build = read_state().get("build") or {}
    if build.get("git_commit") and version.get("git_commit"):
        commit, recorded = version["git_commit"], build["git_commit"]
        assert commit.startswith(recorded) or recorded.startswith(commit), (version, build)

    # The admin dashboard shows the same build.
    ui.login_admin()
    expect(ui.page.locator("#build-id")).to_have_text(version["build_id"])


@pytest.mark.mocks
def test_api_rejects_a_bad_record_without_calling_netcup() -> None:
    """Validation happens before any Netcup call: the mock's journal must not move."""
    mark = netcup_journal_mark()
    response = http().post(app_url("/api/dns"), headers=api_headers(), timeout=30,
                           json={"hostname": "bad", "type": "A", "destination": "not-an-ip"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_record"
    assert netcup_journal_mark() == mark
