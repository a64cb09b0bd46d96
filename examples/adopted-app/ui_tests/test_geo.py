async def test_geoip_lookup_names_the_country(admin_page):
    await admin_page.goto("/admin/geo?ip=81.2.69.170")
    assert await admin_page.text_content("#country") == "81.2.69.170 is in United Kingdom (GB)"


async def test_a_reserved_address_is_explained(admin_page):
    await admin_page.goto("/admin/geo?ip=192.0.2.1")
    assert "IP_ADDRESS_RESERVED" in await admin_page.text_content("#geo-error")
