import aiohttp

from shop import tokens
from ui_tests.config import settings


def test_state_file_token_has_the_documented_format():
    assert tokens.parse(settings.api_token) is not None


async def test_whoami_knows_the_client(page):
    # page.request runs in Playwright's driver, not in the browser: its own TLS client.
    r = await page.request.get("/api/v1/whoami", headers={"Authorization": f"Bearer {settings.api_token}"})
    assert r.status == 200
    assert await r.json() == {"client": tokens.parse(settings.api_token)}


async def test_a_wrong_token_is_401(page):
    _, other = tokens.new_token()
    r = await page.request.get("/api/v1/whoami", headers={"Authorization": f"Bearer {other}"})
    assert r.status == 401


async def test_notes_can_be_posted(unique):
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {settings.api_token}"}) as http:
        async with http.post(settings.base_url + "/api/v1/notes", json={"text": f"note {unique}"}) as r:
            assert r.status == 201
            body = await r.json()
    assert body["text"] == f"note {unique}"
    assert body["id"] > 0
