"""CredlyTokenExpirySensor: fail (so teams can alert on it) while the connection's token has too few days left."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowException

from airflow_provider_credly.client import ApiConnectionError, RateLimitError, ServerError
from airflow_provider_credly.client.tokens import PERMISSIONS
from airflow_provider_credly.hooks.credly import CredlyHook

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["CredlyTokenExpirySensor"]

#: look-up failures worth another poke; any other error (401, 403, a bad extra) fails at once
_TRANSIENT = (ApiConnectionError, RateLimitError, ServerError)


class CredlyTokenExpirySensor(BaseSensorOperator):
    """Check the connection's own authorization token: done while it has at least ``min_days_left`` days
    and every permission of ``require``; failed (not waiting) once below, so an alert or an
    ``on_failure_callback`` fires weeks before the token stops working.

    The token is found among ``GET /organizations/<org>/authorization_tokens`` by a constant-time
    comparison; its value is never logged, returned or pushed. Days are counted from its ``created_at``
    over the connection extra ``lifetime_days`` (default 180). A look-up that fails on a connection
    error, 429 or 5xx is tried again at the next poke; a token the organization does not list fails.

    :param min_days_left: fewer days left than this fails the task (templated; default: the connection
        extra ``expiry_warn_days``, 30 unless set).
    :param require: permissions the token must have: any of ``read``, ``write``, ``delete``.
    :param credly_conn_id: the Credly connection.

    XCom: ``{"token_id", "description", "created_at", "expires_at", "days_left", "read_enabled",
    "write_enabled", "delete_enabled"}``.
    """

    template_fields: Sequence[str] = ("credly_conn_id", "min_days_left", "require")
    ui_color = "#fff2e6"

    def __init__(
        self,
        *,
        min_days_left: float | str | None = None,
        require: Sequence[str] = (),
        credly_conn_id: str = CredlyHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.min_days_left = min_days_left
        self.require = require
        self.credly_conn_id = credly_conn_id

    def _threshold(self, hook: CredlyHook) -> float:
        if self.min_days_left in (None, ""):
            return hook.token_settings[1]
        try:
            return float(self.min_days_left)
        except (TypeError, ValueError):
            raise ValueError(f"min_days_left must be a number, got {self.min_days_left!r}") from None

    def poke(self, context: Context) -> PokeReturnValue:
        required = [self.require] if isinstance(self.require, str) else list(self.require)
        unknown = [p for p in required if p not in PERMISSIONS]
        if unknown:
            raise ValueError(f"require accepts {', '.join(PERMISSIONS)}; got {', '.join(unknown)}")
        hook = CredlyHook(self.credly_conn_id)  # a new hook each poke: a renewed token is seen at once
        threshold = self._threshold(hook)
        try:
            status = hook.get_token_status()
        except _TRANSIENT as exc:
            self.log.warning("Could not read the authorization tokens (%s); trying again", exc)
            return PokeReturnValue(is_done=False)
        if status is None:
            raise AirflowException(
                f"the token of connection {self.credly_conn_id!r} is not among the organization's "
                "authorization tokens: its expiry cannot be checked"
            )
        self.log.info("Credly token of %r: %s", self.credly_conn_id, status.describe())
        lacking = [PERMISSIONS[p] for p in required if not getattr(status, PERMISSIONS[p])]
        if lacking:
            raise AirflowException(
                f"the token of connection {self.credly_conn_id!r} lacks {', '.join(lacking)} "
                f"({status.describe()})"
            )
        if status.days_left < threshold:
            raise AirflowException(
                f"the token of connection {self.credly_conn_id!r} {status.describe()}: fewer than "
                f"{threshold:g} days left; create a new token and update the connection"
            )
        return PokeReturnValue(is_done=True, xcom_value=status.to_dict())
