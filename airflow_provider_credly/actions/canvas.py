"""Revoke Canvas Credentials assertions; an assertion already revoked counts as done.
Pure Python: no Airflow import.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from airflow_provider_credly.actions.results import ActionResult, run_actions
from airflow_provider_credly.client.canvas import (
    CanvasCredentialsClient,
)
from airflow_provider_credly.client.errors import (
    ApiError,
    ValidationError,
)

_ALREADY_REVOKED = re.compile(r"already\s+(been\s+)?revoked", re.I)


def _revoke_one(client: CanvasCredentialsClient, entity_id: str, reason: str | None) -> ActionResult:
    try:
        client.revoke_assertion(entity_id, reason)
        return ActionResult(entity_id, "revoked", entity_id)
    except ValidationError as exc:
        if any(_ALREADY_REVOKED.search(m) for m in exc.messages):
            return ActionResult(entity_id, "already_revoked", entity_id)
        return ActionResult(
            entity_id, "failed", None, None, f"rejected ({exc.status}): {'; '.join(exc.messages)}", exc
        )
    except ApiError as exc:
        return ActionResult(entity_id, "failed", None, None, str(exc), exc)


def revoke_assertions(
    client: CanvasCredentialsClient,
    entity_ids: Sequence[str],
    reason: str | None = None,
    *,
    workers: int = 4,
    max_failures: int = 0,
) -> list[ActionResult]:
    """Revoke assertions (``DELETE /v2/assertions/{id}``); an already revoked one is ``already_revoked``
    (so a retried revoke whose first response was lost still succeeds)."""
    return run_actions(
        entity_ids,
        lambda i: _revoke_one(client, entity_ids[i], reason),
        workers=workers,
        max_failures=max_failures,
    )
