import asyncio

import httpx
import pytest

from ui_tests.config import settings


async def find_mail(subject: str) -> dict | None:
    async with httpx.AsyncClient(auth=settings.mailpit_auth) as http:
        for _ in range(40):
            r = await http.get(f"{settings.mailpit_api}/search", params={"query": f'subject:"{subject}"'})
            r.raise_for_status()
            messages = r.json()["messages"]
            if messages:
                return messages[0]
            await asyncio.sleep(0.25)
    return None


@pytest.mark.mail
async def test_contact_form_mails_the_admin(page, unique):
    await page.goto("/contact")
    await page.fill("#email", f"customer-{unique}@example.org")
    await page.fill("#subject", f"Question {unique}")
    await page.fill("#body", "Can I have a second zone?")
    await page.click("#send")
    assert await page.is_visible("text=Thank you, we will get back to you.")
    mail = await find_mail(f"[shop] Question {unique}")
    assert mail is not None, "the mail did not reach Mailpit"
    assert mail["To"][0]["Address"] == "admin@shop.example"


async def test_contact_form_needs_a_subject(page):
    await page.goto("/contact")
    await page.fill("#email", "customer@example.org")
    await page.click("#send")
    assert await page.is_visible("text=Please give your e-mail address and a subject.")
