"""Settings of the UI suite, from the environment the old run-local-tests.sh exported."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

SUITE_DIR = Path(__file__).resolve().parent


def _flag(name: str, default: str) -> bool:
    return os.environ.get(name, default).strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    base_url: str = field(default_factory=lambda: os.environ.get("UI_BASE_URL", "https://localhost:8443").rstrip("/"))
    state_file: Path = field(default_factory=lambda: Path(os.environ.get(
        "DEPLOYMENT_STATE_FILE", "deployment_state_local.json")))
    headless: bool = field(default_factory=lambda: _flag("PLAYWRIGHT_HEADLESS", "0"))
    slow_mo: float = field(default_factory=lambda: float(os.environ.get("PLAYWRIGHT_SLOW_MO", "0")))
    server_ws: str | None = field(default_factory=lambda: os.environ.get("PLAYWRIGHT_SERVER_WS") or None)
    screenshots: Path = SUITE_DIR / "screenshots"
    auth_dir: Path = SUITE_DIR / ".auth"
    mailpit_api: str = field(default_factory=lambda: os.environ.get(
        "MAILPIT_API_URL", "http://shop-dev-mailpit:8025/api/v1").rstrip("/"))
    mailpit_auth: tuple[str, str] | None = field(default_factory=lambda: (
        (os.environ["MAILPIT_USERNAME"], os.environ.get("MAILPIT_PASSWORD", ""))
        if os.environ.get("MAILPIT_USERNAME") else None))
    netcup_api: str = field(default_factory=lambda: os.environ.get(
        "MOCK_NETCUP_API_URL", "http://shop-dev-mock-netcup-api:8080").rstrip("/"))
    dns_zone: str = field(default_factory=lambda: os.environ.get("SHOP_DNS_ZONE", "shop.example"))

    def state(self) -> dict:
        """The deployment state file, read fresh: an earlier test may have changed it."""
        return json.loads(self.state_file.read_text(encoding="utf-8"))

    @property
    def admin_password(self) -> str:
        return self.state()["admin"]["password"]

    @property
    def api_token(self) -> str:
        return self.state()["clients"][0]["secret_key"]


settings = Settings()
