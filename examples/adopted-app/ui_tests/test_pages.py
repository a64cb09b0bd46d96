import ssl
import urllib.request

import httpx

from ui_tests.config import settings


async def test_health_answers_ok():
    async with httpx.AsyncClient(base_url=settings.base_url) as http:
        r = await http.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_https_sends_security_headers():
    with urllib.request.urlopen(settings.base_url + "/", context=ssl.create_default_context()) as r:
        headers = {k.lower(): v for k, v in r.headers.items()}
    assert "max-age=" in headers["strict-transport-security"]
    assert headers["x-content-type-options"] == "nosniff"


async def test_home_page_has_footer_with_the_build(page, shot):
    await page.goto("/")
    assert await page.title() == "Shop Desk"
    footer = await page.text_content("#build")
    assert footer.startswith("Shop Desk 2.4.1 · build ")
    await shot(page, "home")


async def test_login_page_renders(page, shot):
    await page.goto("/login")
    assert await page.is_visible("#username")
    assert await page.is_visible("#password")
    await shot(page, "login")
