from __future__ import annotations

import re
import uuid

import pytest
import pytest_asyncio

from ui_tests.browser import BrowserClient
from ui_tests.config import settings


@pytest_asyncio.fixture(scope="session")
async def client():
    c = await BrowserClient().start()
    yield c
    await c.stop()


@pytest_asyncio.fixture
async def context(client):
    ctx = await client.new_context()
    yield ctx
    await ctx.close()


@pytest_asyncio.fixture
async def page(context):
    return await context.new_page()


async def log_in(page, password: str | None = None) -> None:
    await page.goto("/login")
    await page.fill("#username", "admin")
    await page.fill("#password", password or settings.admin_password)
    await page.click("#submit")


@pytest_asyncio.fixture
async def admin_page(page):
    await log_in(page)
    await page.wait_for_url(re.compile(r".*/admin$"))
    return page


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def shot():
    """Saves a screenshot beside the suite, as our reviewers like to look at them."""
    settings.screenshots.mkdir(parents=True, exist_ok=True)

    async def take(page, name: str) -> None:
        await page.screenshot(path=str(settings.screenshots / f"{name}.png"), full_page=True)

    return take
