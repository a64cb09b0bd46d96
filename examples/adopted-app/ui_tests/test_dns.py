import os

import aiohttp
import pytest

from ui_tests.config import settings

# The development mock's credentials (the real ones live only on the server).
NETCUP_CREDS = {
    "customernumber": os.environ.get("SHOP_NETCUP_CUSTOMER", "123456"),
    "apikey": os.environ.get("SHOP_NETCUP_APIKEY", "test-api-key"),
}
NETCUP_PASSWORD = os.environ.get("SHOP_NETCUP_APIPASSWORD", "test-api-password")


async def netcup(http, action: str, param: dict) -> dict:
    url = settings.netcup_api + "/run/webservice/servers/endpoint.php?JSON"
    async with http.post(url, json={"action": action, "param": param}) as r:
        body = await r.json(content_type=None)
    assert body["status"] == "success", body
    return body["responsedata"]


async def records_of(zone: str) -> list[dict]:
    async with aiohttp.ClientSession() as http:
        session = (await netcup(http, "login", {**NETCUP_CREDS, "apipassword": NETCUP_PASSWORD}))["apisessionid"]
        auth = {**NETCUP_CREDS, "apisessionid": session}
        data = await netcup(http, "infoDnsRecords", {**auth, "domainname": zone})
        await netcup(http, "logout", auth)
    return data["dnsrecords"]


@pytest.mark.dns
async def test_a_record_saved_in_the_form_reaches_netcup(admin_page, unique):
    await admin_page.goto("/admin/dns")
    await admin_page.fill("#hostname", f"shop-{unique}")
    await admin_page.select_option("#type", "A")
    await admin_page.fill("#destination", "203.0.113.7")
    await admin_page.click("#save")
    assert await admin_page.is_visible(f"text=shop-{unique}.{settings.dns_zone} A 203.0.113.7 saved.")
    records = await records_of(settings.dns_zone)
    assert {"hostname": f"shop-{unique}", "type": "A", "destination": "203.0.113.7"} in [
        {k: r[k] for k in ("hostname", "type", "destination")} for r in records
    ]
