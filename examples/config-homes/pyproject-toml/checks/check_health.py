import os

import requests


def test_the_app_answers_health():
    r = requests.get(os.environ["UI_BASE_URL"] + "/health", timeout=10)
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}
