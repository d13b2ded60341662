"""Both emulators run from a command line, printing where they listen and how to log in."""

from __future__ import annotations

import pytest
import requests

from airflow_provider_credly.testing import spawn_emulator_process
from airflow_provider_credly.testing.deployment import spawn_canvas_process

pytestmark = pytest.mark.integration


def test_canvas_emulator_command_line_serves_its_seeded_issuer():
    process, info = spawn_canvas_process(assertions=5)
    try:
        assert info["url"].startswith("http://127.0.0.1:")
        token = requests.post(
            f"{info['url']}/o/token",
            data={"grant_type": "password", "username": info["username"], "password": info["password"]},
            timeout=10,
        )
        assert token.status_code == 200, token.text
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        issuers = requests.get(f"{info['url']}/v2/issuers", headers=headers, timeout=10).json()["result"]
        assert [i["name"] for i in issuers] == ["Emulated Faculty"]
        bad = requests.post(
            f"{info['url']}/o/token",
            data={"grant_type": "password", "username": info["username"], "password": "wrong"},
            timeout=10,
        )
        assert bad.status_code == 400
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0  # SIGTERM is a clean stop


def test_credly_emulator_command_line_serves_the_organization():
    with spawn_emulator_process(badges=10, employees=2) as emu:
        org = requests.get(emu.org_url, auth=emu.auth, timeout=10)
        assert org.status_code == 200 and org.json()["data"]["id"] == emu.org_id
        assert requests.get(emu.org_url, auth=("nope", ""), timeout=10).status_code == 401
