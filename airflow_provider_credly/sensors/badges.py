"""CredlyBadgeSensor: wait until badges matching a filter exist (or changed since a time)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from airflow.sdk import BaseSensorOperator, PokeReturnValue, conf
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

from airflow_provider_credly.client.times import parse_timestamp
from airflow_provider_credly.hooks.credly import CredlyHook
from airflow_provider_credly.operators.failures import FailFastMixin
from airflow_provider_credly.triggers.badges import CredlyBadgeTrigger, badge_filter, match_badges

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["CredlyBadgeSensor"]

T = TypeVar("T")


class CredlyBadgeSensor(FailFastMixin, BaseSensorOperator):
    """Wait until at least ``min_count`` badges match ``filters`` (optionally: changed since a time).

    Works in ``poke``/``reschedule`` mode and with ``deferrable=True``, where
    :class:`~airflow_provider_credly.triggers.badges.CredlyBadgeTrigger` polls in the triggerer. The filter is
    validated before any wait. The XCom value is ``{"count": n, "ids": [...]}`` (plus ``"badges"`` with
    ``include_badges=True``).

    Failures follow :mod:`~airflow_provider_credly.operators.failures`: an error a retry cannot fix (a
    401/403, an invalid filter, a 404) fails the task at once as an ``AirflowFailException``, in ``poke``
    (``silent_fail`` does not take it for "not yet"), in ``execute`` and after a deferral, and also with
    ``soft_fail=True``: ``soft_fail`` skips a wait that ran out, not a broken connection or filter (only
    ``never_fail`` skips those). Transient errors (429, 5xx, dropped connections) behave as for any
    sensor: ``silent_fail`` pokes again, otherwise the task fails and is retried.

    :param filters: documented badge filters, e.g. ``{"state": "accepted", "badge_template_id": "..."}``.
    :param changed_since: only badges updated at or after this time count (datetime or ISO text, templated,
        e.g. ``"{{ dag_run.run_after - macros.timedelta(hours=24) }}"``, which every run has; manual runs
        have no ``data_interval_start``). Each check then reads every badge of the filter changed since
        the day before, through the high-volume cursor, however busy the day (see
        :func:`~airflow_provider_credly.triggers.badges.match_badges`).
    :param min_count: how many matching badges end the wait.
    :param max_results: how many ids (and badges) to return at most.
    :param include_badges: return the badge records too (keep ``max_results`` small: XCom).
    :param credly_conn_id: the Credly connection.
    :param deferrable: wait in the triggerer (default: ``[operators] default_deferrable``).
    """

    template_fields: Sequence[str] = ("credly_conn_id", "filters", "changed_since", "min_count")
    ui_color = "#e6f0ff"

    def __init__(
        self,
        *,
        filters: Mapping[str, Any] | str | None = None,
        changed_since: datetime | str | None = None,
        min_count: int = 1,
        max_results: int = 100,
        include_badges: bool = False,
        credly_conn_id: str = CredlyHook.default_conn_name,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.filters = filters
        self.changed_since = changed_since
        self.min_count = min_count
        self.max_results = max_results
        self.include_badges = include_badges
        self.credly_conn_id = credly_conn_id
        self.deferrable = deferrable

    @cached_property
    def hook(self) -> CredlyHook:
        """The Credly hook (built on first use)."""
        # the sensor warns of a token close to expiry itself, once it is done (post_execute) or failed
        # (after_error): not at the first request of every poke in reschedule mode
        return CredlyHook(credly_conn_id=self.credly_conn_id, warn_token_expiry=False)

    def _not_skipped_when_permanent(self, run: Callable[[], T]) -> T:
        """``run()``, except that an ``AirflowFailException`` of this sensor (a 401, an invalid filter) that
        ``soft_fail`` turned into a skip fails the task instead (``never_fail`` still skips it)."""
        try:
            return run()
        except AirflowSkipException as exc:
            cause = exc.__cause__
            if isinstance(cause, AirflowFailException) and not self.never_fail:
                raise cause from cause.__cause__
            raise

    def _since(self) -> datetime | None:
        value = self.changed_since
        if value in (None, ""):
            return None
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        try:
            return parse_timestamp(value)
        except ValueError:
            raise ValueError(f"changed_since must be a datetime or ISO 8601 text, got {value!r}") from None

    def _request(self) -> tuple[str | None, datetime | None]:
        """Validate everything before the first request: the filter text and the change time."""
        if int(self.min_count) < 1:
            raise ValueError(f"min_count must be at least 1, got {self.min_count!r}")
        if int(self.max_results) < 0:
            raise ValueError(f"max_results must not be negative, got {self.max_results!r}")
        since = self._since()
        return badge_filter(self.filters, since), since

    def _check(self, filter_text: str | None, since: datetime | None) -> dict[str, Any]:
        return match_badges(
            self.hook.client,
            filter_text,
            changed_since=since,
            min_count=int(self.min_count),
            max_results=int(self.max_results),
            include_badges=self.include_badges,
        )

    @staticmethod
    def _xcom(result: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in result.items() if k in ("count", "ids", "badges")}

    def poke(self, context: Context) -> PokeReturnValue:
        filter_text, since = self._request()
        result = self._check(filter_text, since)
        self.log.info("%d matching badge(s); waiting for %d", result["count"], int(self.min_count))
        return PokeReturnValue(is_done=bool(result["done"]), xcom_value=self._xcom(result))

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return self._not_skipped_when_permanent(lambda: super(CredlyBadgeSensor, self).execute(context))
        filter_text, since = self._request()
        result = self._check(filter_text, since)  # done already: no deferral
        if result["done"]:
            self.log.info("%d matching badge(s) found at once", result["count"])
            return self._xcom(result)
        end_time = datetime.now(UTC) + timedelta(seconds=float(self.timeout or 7 * 86400))
        self.defer(
            trigger=CredlyBadgeTrigger(
                credly_conn_id=self.credly_conn_id,
                filter_text=filter_text,
                changed_since=since.isoformat() if since else None,
                min_count=int(self.min_count),
                max_results=int(self.max_results),
                include_badges=self.include_badges,
                poll_interval=float(self.poke_interval),
                end_time=end_time.isoformat(),
            ),
            method_name="execute_complete",
        )
        return None  # not reached: defer() raises TaskDeferred

    def post_execute(self, context: Any, result: Any = None) -> None:
        """After the sensor succeeded: one warning when its token is close to expiry (best effort)."""
        super().post_execute(context, result)
        self.hook.check_token()

    def after_error(self) -> None:
        """After a failed try too: one warning when the token is about to expire (never raises)."""
        self.hook.check_token()

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        """Resume after the deferral; a permanent error event fails the task even with ``soft_fail``."""
        return self._not_skipped_when_permanent(
            lambda: super(CredlyBadgeSensor, self).resume_execution(next_method, next_kwargs, context)
        )

    def execute_complete(self, context: Context, event: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Resume after the trigger fired: return the match, or fail (or skip with ``soft_fail``)."""
        if not isinstance(event, Mapping) or "status" not in event:
            raise AirflowException(f"unexpected event from CredlyBadgeTrigger: {event!r}")
        status, message = event["status"], str(event.get("message", ""))
        if status == "success":
            self.log.info("Trigger: %s", message)
            return self._xcom(event)
        if status == "timeout" and self.soft_fail:
            raise AirflowSkipException(f"Credly badge sensor timed out: {message}")
        if status == "timeout":
            from airflow.sdk.exceptions import AirflowSensorTimeout

            raise AirflowSensorTimeout(f"Credly badge sensor timed out: {message}")
        if event.get("permanent"):  # a 401, a bad filter: a retry meets it again
            raise AirflowFailException(f"Credly badge sensor failed: {message}")
        raise AirflowException(f"Credly badge sensor failed: {message}")
