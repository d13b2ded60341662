"""Revoke, delete and replace Credly badges with Credly's documented 422s mapped to clear outcomes.
Pure Python: no Airflow import.

* A replaced badge can be neither revoked nor replaced again: Credly answers 422 with the current version's
  id in ``metadata.current_badge_id``. ``follow_replacement=True`` acts on that version instead.
* A replaced badge cannot be deleted either ("You can not delete replaced badges"), and that 422 carries no
  id. The current version is then found by asking Credly to revoke the replaced badge, which it refuses with
  a 422 naming the current version (replacement is permanent, so that request cannot take effect).
* Revoking a revoked badge and deleting a deleted one (404) are done already: reported, not failures.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from airflow_provider_credly.actions.results import ActionResult
from airflow_provider_credly.client.credly import CredlyClient
from airflow_provider_credly.client.errors import (
    UNKNOWN_OUTCOME_ERRORS,
    ApiError,
    NotFoundError,
    ValidationError,
)

log = logging.getLogger(__name__)

MAX_HOPS = 10


PROBE_REASON = "airflow-provider-credly: locate the current version of a replaced badge"


_ALREADY_REVOKED = re.compile(r"already\s+(been\s+)?revoked", re.IGNORECASE)


_DELETE_REPLACED = re.compile(r"delete\s+replaced", re.IGNORECASE)


def _replaced_message(action: str, badge_id: str, current: str | None) -> str:
    where = f"its current version is {current}" if current else "its current version could not be found"
    return f"badge {badge_id} has been replaced ({where}); {action} the current version or set follow_replacement=True"


def find_current_version(client: CredlyClient, badge_id: str) -> str | None:
    """The id of the current version of a replaced badge (see the module docstring), or ``None``."""
    try:
        client.revoke_badge(badge_id, PROBE_REASON, suppress_revoke_notification_email=True)
    except ValidationError as exc:
        return exc.current_badge_id
    except NotFoundError:
        return None
    log.warning("badge %s was expected to be replaced but Credly revoked it", badge_id)
    return None


def revoke_badge(
    client: CredlyClient,
    badge_id: str,
    reason: str,
    *,
    suppress_revoke_notification_email: bool | None = None,
    follow_replacement: bool = False,
) -> ActionResult:
    """Revoke one badge; an already revoked badge is done (``already_revoked``)."""
    target = badge_id
    for _ in range(MAX_HOPS):
        try:
            badge = client.revoke_badge(
                target, reason, suppress_revoke_notification_email=suppress_revoke_notification_email
            )
        except ValidationError as exc:
            current = exc.current_badge_id
            if current and follow_replacement and current != target:
                log.info("badge %s has been replaced by %s: revoking that one", target, current)
                target = current
                continue
            if current:
                return ActionResult(
                    badge_id, "failed", None, current, _replaced_message("revoke", target, current), exc
                )
            if any(_ALREADY_REVOKED.search(m) for m in exc.messages):
                log.info("badge %s was already revoked", target)
                return ActionResult(badge_id, "already_revoked", target)
            return ActionResult(badge_id, "failed", None, None, f"rejected: {'; '.join(exc.messages)}", exc)
        except ApiError as exc:
            return ActionResult(badge_id, "failed", None, None, str(exc), exc)
        note = None if str(badge.get("state", "revoked")) == "revoked" else f"state is {badge.get('state')}"
        return ActionResult(badge_id, "revoked", target, None, note)
    return ActionResult(badge_id, "failed", None, None, f"more than {MAX_HOPS} replacements followed")


def delete_badge(client: CredlyClient, badge_id: str, *, follow_replacement: bool = False) -> ActionResult:
    """Delete one badge; a badge that is not found (404) is done (``already_deleted``).

    Deleting the current version of a replaced badge deletes all its previous versions too.
    """
    target = badge_id
    for _ in range(MAX_HOPS):
        try:
            client.delete_badge(target)
        except NotFoundError:
            log.info("badge %s not found: treated as already deleted", target)
            return ActionResult(badge_id, "already_deleted", target)
        except ValidationError as exc:
            if not any(_DELETE_REPLACED.search(m) for m in exc.messages):
                return ActionResult(
                    badge_id, "failed", None, None, f"rejected: {'; '.join(exc.messages)}", exc
                )
            current = exc.current_badge_id or _safe_current(client, target)
            if current and follow_replacement and current != target:
                log.info("badge %s has been replaced by %s: deleting that one", target, current)
                target = current
                continue
            return ActionResult(
                badge_id, "failed", None, current, _replaced_message("delete", target, current), exc
            )
        except ApiError as exc:
            return ActionResult(badge_id, "failed", None, None, str(exc), exc)
        return ActionResult(badge_id, "deleted", target)
    return ActionResult(badge_id, "failed", None, None, f"more than {MAX_HOPS} replacements followed")


def _safe_current(client: CredlyClient, badge_id: str) -> str | None:
    try:
        return find_current_version(client, badge_id)
    except ApiError as exc:
        log.warning("could not find the current version of badge %s: %s", badge_id, exc)
        return None


def replace_badge(
    client: CredlyClient,
    badge_id: str,
    fields: Mapping[str, Any],
    *,
    follow_replacement: bool = False,
    retried: bool = False,
    max_attempts: int = 3,
) -> ActionResult:
    """Replace one badge with a new one built from ``fields`` (see ``build_replace_payload``).

    A replace whose outcome is unknown (5xx, dropped connection) is sent again: if the first one took
    effect, Credly answers "already been replaced" and that replacement is adopted (``already_replaced``).
    On a task retry (``retried=True``) the same answer is taken as the earlier try's replacement.
    """
    target = badge_id
    unknown = 0
    hops = 0
    while True:
        try:
            new = client.replace_badge(target, **fields)
        except ValidationError as exc:
            current = exc.current_badge_id
            if not current:
                return ActionResult(
                    badge_id, "failed", None, None, f"rejected: {'; '.join(exc.messages)}", exc
                )
            if unknown or retried:
                log.info("badge %s was already replaced by %s (earlier attempt)", target, current)
                return ActionResult(badge_id, "already_replaced", target, current)
            if follow_replacement and current != target and hops < MAX_HOPS:
                hops += 1
                log.info("badge %s has been replaced by %s: replacing that one", target, current)
                target = current
                continue
            return ActionResult(
                badge_id, "failed", None, current, _replaced_message("replace", target, current), exc
            )
        except UNKNOWN_OUTCOME_ERRORS as exc:
            unknown += 1
            if unknown >= max_attempts:
                return ActionResult(badge_id, "failed", None, None, f"outcome unknown: {exc}", exc)
            log.warning(
                "replace of badge %s: outcome unknown (%s); checking by sending it again", target, exc
            )
            continue
        except ApiError as exc:
            return ActionResult(badge_id, "failed", None, None, str(exc), exc)
        return ActionResult(badge_id, "replaced", target, str(new.get("id")) if new.get("id") else None)
