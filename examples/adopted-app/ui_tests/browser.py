"""Our Playwright client: one browser for the whole session.

Locally it launches Chromium (`PLAYWRIGHT_HEADLESS=0` shows the window); in the old CI it connected
to the Playwright container through `PLAYWRIGHT_SERVER_WS`.
"""

from __future__ import annotations

from playwright.async_api import Browser, BrowserContext, Playwright, async_playwright

from ui_tests.config import settings


class BrowserClient:
    def __init__(self) -> None:
        self._playwright: Playwright | None = None
        self.browser: Browser | None = None

    async def start(self) -> "BrowserClient":
        self._playwright = await async_playwright().start()
        if settings.server_ws:
            self.browser = await self._playwright.chromium.connect(settings.server_ws)
        else:
            self.browser = await self._playwright.chromium.launch(
                headless=settings.headless, slow_mo=settings.slow_mo)
        return self

    async def new_context(self, **kwargs) -> BrowserContext:
        assert self.browser is not None, "start() first"
        return await self.browser.new_context(base_url=settings.base_url, **kwargs)

    async def stop(self) -> None:
        if self.browser is not None:
            await self.browser.close()
        if self._playwright is not None:
            await self._playwright.stop()
