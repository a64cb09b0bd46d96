"""Browser tests of Shop Desk. Run from the repository root: `pytest` (see pytest.ini)."""
