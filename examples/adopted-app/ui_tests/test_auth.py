import re

from ui_tests.config import settings
from ui_tests.conftest import log_in


async def test_wrong_password_is_refused(page):
    await log_in(page, password="not-the-password")
    assert await page.is_visible("text=Wrong username or password.")
    assert page.url.endswith("/login")


async def test_admin_logs_in_and_keeps_the_session(admin_page, context):
    assert await admin_page.text_content("#welcome") == "Signed in as admin."
    settings.auth_dir.mkdir(parents=True, exist_ok=True)
    await context.storage_state(path=str(settings.auth_dir / "admin.json"))
    assert (settings.auth_dir / "admin.json").stat().st_size > 0


async def test_saved_session_opens_the_dashboard(client):
    state = settings.auth_dir / "admin.json"
    if not state.exists():
        ctx = await client.new_context()
        page = await ctx.new_page()
        await log_in(page)
        await page.wait_for_url(re.compile(r".*/admin$"))
        settings.auth_dir.mkdir(parents=True, exist_ok=True)
        await ctx.storage_state(path=str(state))
        await ctx.close()
    ctx = await client.new_context(storage_state=str(state))
    page = await ctx.new_page()
    await page.goto("/admin")
    assert await page.text_content("#welcome") == "Signed in as admin."
    await ctx.close()


async def test_logout_ends_the_session(admin_page):
    await admin_page.click("#logout")
    await admin_page.goto("/admin")
    assert "/login" in admin_page.url
