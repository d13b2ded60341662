"""create_badge_class takes the documented body field ``issuer`` as a keyword (the path id is positional)."""

from __future__ import annotations

import pytest

from airflow_provider_credly.testing.canvas import CanvasState, run_canvas_emulator
from tests.integration.canvas.test_canvas_client_emulator import client_for

pytestmark = pytest.mark.integration


def test_issuer_body_field_does_not_clash_with_the_path_id():
    with run_canvas_emulator(CanvasState.seeded(badge_classes=1, assertions=0)) as emu:
        client = client_for(emu)
        issuer_id = emu.state.issuer_id
        bc = client.create_badge_class(
            issuer_id, issuer=issuer_id, name="B", image="https://example.edu/b.png", description="d"
        )
        assert bc["issuer"] == issuer_id
        assert bc["entityId"] in [b["entityId"] for b in client.list_badge_classes(issuer_id)]
