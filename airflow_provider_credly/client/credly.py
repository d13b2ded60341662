"""Typed methods for every documented Credly endpoint (badges, organizations, events, authorization
tokens, Workforce employees). Pure Python: no Airflow import.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote

from airflow_provider_credly.client.auth import BasicTokenAuth
from airflow_provider_credly.client.filters import (
    BADGE_FILTERS,
    BADGE_SORTS,
    BADGE_TEMPLATE_FILTERS,
    BADGE_TEMPLATE_SORTS,
    EMPLOYEE_FILTERS,
    EMPLOYEE_SORTS,
    build_filter,
    build_sort,
)
from airflow_provider_credly.client.http import ApiResponse, HttpClient
from airflow_provider_credly.client.pagination import Page, credly_resource, iter_pages
from airflow_provider_credly.client.payloads import (
    build_employee_payload,
    build_invitation_payload,
    build_issue_payload,
    build_organization_payload,
    build_replace_payload,
    build_revoke_payload,
)
from airflow_provider_credly.client.retry import RetryPolicy
from airflow_provider_credly.client.tokens import (
    DEFAULT_TOKEN_LIFETIME_DAYS,
    TokenStatus,
    mask_token,
    token_status,
)

__all__ = ["DEFAULT_BASE_URL", "SANDBOX_BASE_URL", "BadgeFormat", "Created", "CredlyClient"]

DEFAULT_BASE_URL = "https://api.credly.com/v1"
SANDBOX_BASE_URL = "https://sandbox-api.credly.com/v1"

BadgeFormat = Literal["default", "minimal"]
Filters = Mapping[str, Any] | str | None
Sort = str | Iterable[str] | None


@dataclass(frozen=True)
class Created:
    """A resource a ``POST`` created, and the URL its ``201 Created`` response's ``Location`` header gives
    (``None`` when the server sent none)."""

    data: dict[str, Any]
    location: str | None


def _created(resp: ApiResponse) -> Created:
    return Created(credly_resource(resp), resp.headers.get("Location") or None)


def _masked(pages: Iterator[Page]) -> Iterator[Page]:
    """Authorization token pages with every ``token`` value masked (Credly lists them in clear text)."""
    for page in pages:
        yield Page([mask_token(t) for t in page.items], page.url, page.next_url, page.metadata)


def _seg(value: str) -> str:
    text = str(value).strip()
    if not text:
        raise ValueError("an id is required")
    return quote(text, safe="@")


class CredlyClient:
    """Credly API v1 for one organization.

    :param http: the HTTP core (base URL, auth, retries).
    :param organization_id: the organization the badge, event, token and employee methods act on.
    """

    def __init__(self, http: HttpClient, organization_id: str | None = None) -> None:
        self.http = http
        self.organization_id = organization_id

    @classmethod
    def create(
        cls,
        token: str,
        organization_id: str | None = None,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float | tuple[float, float] = (10.0, 60.0),
        retry: RetryPolicy | None = None,
        verify: bool | str = True,
        pool_size: int = 16,
    ) -> CredlyClient:
        """A client with its own HTTP session, authenticated with an organization authorization token."""
        http = HttpClient(
            base_url,
            auth=BasicTokenAuth(token),
            timeout=timeout,
            retry=retry,
            verify=verify,
            pool_size=pool_size,
        )
        return cls(http, organization_id)

    def __repr__(self) -> str:
        return f"CredlyClient(base_url={self.http.base_url!r}, organization_id={self.organization_id!r})"

    def for_organization(self, organization_id: str) -> CredlyClient:
        """The same session and credential, acting on another organization."""
        return CredlyClient(self.http, organization_id)

    def close(self) -> None:
        """Close the underlying HTTP session."""
        self.http.close()

    # -- paths -------------------------------------------------------------------------------------

    def _org(self, *parts: str) -> str:
        if not self.organization_id:
            raise ValueError("organization_id is not set (connection extra 'organization_id')")
        return "/".join(["organizations", _seg(self.organization_id), *parts])

    def _get(self, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return self.http.request("GET", path, params=params, parse=credly_resource)

    # -- organizations -----------------------------------------------------------------------------

    def iter_organization_pages(self, *, start_url: str | None = None) -> Iterator[Page]:
        """Pages of the organizations the token can act for (``GET /organizations``); each page's
        :attr:`Page.metadata` holds Credly's counts (``total_count``, ``total_pages``...).

        :param start_url: resume from a saved :attr:`Page.next_url`.
        """
        return iter_pages(self.http, "organizations", start_url=start_url)

    def iter_organizations(self) -> Iterator[dict[str, Any]]:
        """Organizations the token can act for (``GET /organizations``)."""
        for page in self.iter_organization_pages():
            yield from page.items

    def get_organization(self) -> dict[str, Any]:
        """The organization (``GET /organizations/<org>``)."""
        return dict(self._get(self._org()))

    def update_organization(self, **fields: Any) -> dict[str, Any]:
        """Update the organization's profile (``PUT /organizations/<org>``)."""
        body = build_organization_payload(fields)
        return self.http.request("PUT", self._org(), json_body=body, parse=credly_resource)

    # -- events and tokens -------------------------------------------------------------------------

    def get_event(self, event_id: str) -> dict[str, Any]:
        """One event (``GET /organizations/<org>/events/<id>``), e.g. from a webhook delivery."""
        return dict(self._get(self._org("events", _seg(event_id))))

    def iter_event_pages(self, *, start_url: str | None = None) -> Iterator[Page]:
        """Pages of the organization's events (50 per page)."""
        return iter_pages(self.http, self._org("events"), start_url=start_url)

    def iter_events(self) -> Iterator[dict[str, Any]]:
        """Every event of the organization."""
        for page in self.iter_event_pages():
            yield from page.items

    def iter_authorization_token_pages(self, *, start_url: str | None = None) -> Iterator[Page]:
        """Pages of the organization's authorization tokens (``GET .../authorization_tokens``), every
        ``token`` value masked; :attr:`Page.metadata` holds Credly's counts.

        :param start_url: resume from a saved :attr:`Page.next_url`.
        """
        return _masked(iter_pages(self.http, self._org("authorization_tokens"), start_url=start_url))

    def iter_authorization_tokens(self) -> Iterator[dict[str, Any]]:
        """The organization's authorization tokens, every ``token`` value masked."""
        for page in self.iter_authorization_token_pages():
            yield from page.items

    def find_own_authorization_token(self) -> dict[str, Any] | None:
        """The record (token masked) of the token this client authenticates with, or ``None`` when the
        organization does not list it. Compared in constant time inside the auth object; the clear values
        never leave this method.

        :raises ValueError: the client does not authenticate with an authorization token.
        """
        auth = self.http.auth
        matches = getattr(auth, "matches", None)
        if not callable(matches):
            raise ValueError("this client does not authenticate with a Credly authorization token")
        found: dict[str, Any] | None = None
        for page in iter_pages(self.http, self._org("authorization_tokens")):
            for record in page.items:
                # every record is compared (no early exit), so timing says nothing about the position
                if matches(record.get("token")) and found is None:
                    found = mask_token(record)
        return found

    def get_token_status(
        self, *, lifetime_days: float = DEFAULT_TOKEN_LIFETIME_DAYS, now: datetime | None = None
    ) -> TokenStatus | None:
        """Days left and permissions of this client's own token (see :func:`token_status`), or ``None``
        when the organization does not list it.

        :param lifetime_days: how long a token lives after its ``created_at`` (Credly: 180 days).
        """
        record = self.find_own_authorization_token()
        return None if record is None else token_status(record, lifetime_days=lifetime_days, now=now)

    # -- badge templates ---------------------------------------------------------------------------

    def iter_badge_template_pages(
        self, filters: Filters = None, sort: Sort = None, *, start_url: str | None = None
    ) -> Iterator[Page]:
        """Pages of badge templates (``GET /organizations/<org>/badge_templates``, 50 per page).

        :param filters: ``{key: value}`` with the keys of :data:`BADGE_TEMPLATE_FILTERS`
            (``name``, ``state``, ``public``).
        :param sort: ``"name"``, ``"-updated_at"``... (:data:`BADGE_TEMPLATE_SORTS`).
        :param start_url: resume from a saved :attr:`Page.next_url`.
        """
        params = {
            "filter": build_filter(filters, BADGE_TEMPLATE_FILTERS),
            "sort": build_sort(sort, BADGE_TEMPLATE_SORTS),
        }
        return iter_pages(self.http, self._org("badge_templates"), params, start_url=start_url)

    def iter_badge_templates(self, filters: Filters = None, sort: Sort = None) -> Iterator[dict[str, Any]]:
        """Every badge template matching ``filters`` (see :meth:`iter_badge_template_pages`)."""
        for page in self.iter_badge_template_pages(filters, sort):
            yield from page.items

    def get_badge_template(self, template_id: str) -> dict[str, Any]:
        """One badge template (``GET /organizations/<org>/badge_templates/<id>``)."""
        return dict(self._get(self._org("badge_templates", _seg(template_id))))

    # -- badges ------------------------------------------------------------------------------------

    def issue_badge(self, **fields: Any) -> dict[str, Any]:
        """Issue one badge (``POST /organizations/<org>/badges``); fields are validated first.

        Not retried when the outcome is unknown (see :class:`HttpClient`); the issue operators resolve
        such cases to the existing badge instead.
        """
        return self.issue_badge_located(**fields).data

    def issue_badge_located(self, **fields: Any) -> Created:
        """As :meth:`issue_badge`, with the ``Location`` header of the ``201 Created`` response (the new
        badge's URL) beside the badge."""
        body = build_issue_payload(fields)
        return self.http.request("POST", self._org("badges"), json_body=body, parse=_created)

    def iter_badge_pages(
        self, filters: Filters = None, sort: Sort = None, *, start_url: str | None = None
    ) -> Iterator[Page]:
        """Pages of issued badges (``GET /organizations/<org>/badges``, 50 per page).

        :param filters: ``{key: value}`` with the documented keys (see :data:`BADGE_FILTERS`).
        :param sort: ``"-issued_at"``, ``["created_at", "-state_updated_at"]``...
        :param start_url: resume from a saved :attr:`Page.next_url`.
        """
        params = {"filter": build_filter(filters, BADGE_FILTERS), "sort": build_sort(sort, BADGE_SORTS)}
        return iter_pages(self.http, self._org("badges"), params, start_url=start_url)

    def iter_badges(self, filters: Filters = None, sort: Sort = None) -> Iterator[dict[str, Any]]:
        """Every issued badge matching ``filters`` (see :meth:`iter_badge_pages`)."""
        for page in self.iter_badge_pages(filters, sort):
            yield from page.items

    def iter_high_volume_badge_pages(
        self,
        filters: Filters = None,
        *,
        badge_format: BadgeFormat = "default",
        start_url: str | None = None,
    ) -> Iterator[Page]:
        """Pages of the forward cursor ``GET /organizations/<org>/high_volume_issued_badge_search``.

        Results come in ``created_at``, then ``id`` order. Each page's :attr:`Page.next_url` is the cursor
        to resume from after that page has been processed.

        :param filters: same keys as :meth:`iter_badge_pages` (no sort on this endpoint).
        :param badge_format: ``"default"`` or ``"minimal"`` (fastest).
        :param start_url: a saved cursor URL to resume from.
        """
        if badge_format not in ("default", "minimal"):
            raise ValueError(f"badge_format must be 'default' or 'minimal', got {badge_format!r}")
        params = {"filter": build_filter(filters, BADGE_FILTERS), "badge_format": badge_format}
        return iter_pages(
            self.http, self._org("high_volume_issued_badge_search"), params, start_url=start_url
        )

    def iter_high_volume_badges(
        self, filters: Filters = None, *, badge_format: BadgeFormat = "default"
    ) -> Iterator[dict[str, Any]]:
        """Every badge of the high-volume cursor."""
        for page in self.iter_high_volume_badge_pages(filters, badge_format=badge_format):
            yield from page.items

    def replace_badge(self, badge_id: str, **fields: Any) -> dict[str, Any]:
        """Replace a badge with a new one (``POST .../badges/<id>/replace``); returns the new badge.

        A badge already replaced raises :class:`ValidationError` whose ``current_badge_id`` names the
        current version.
        """
        body = build_replace_payload(fields)
        path = self._org("badges", _seg(badge_id), "replace")
        return self.http.request("POST", path, json_body=body, parse=credly_resource)

    def revoke_badge(
        self, badge_id: str, reason: str, *, suppress_revoke_notification_email: bool | None = None
    ) -> dict[str, Any]:
        """Revoke a badge (``PUT .../badges/<id>/revoke``); returns the revoked badge."""
        body = build_revoke_payload(reason, suppress_revoke_notification_email)
        path = self._org("badges", _seg(badge_id), "revoke")
        return self.http.request("PUT", path, json_body=body, parse=credly_resource)

    def delete_badge(self, badge_id: str) -> None:
        """Delete a badge for good (``DELETE .../badges/<id>``)."""
        self.http.request("DELETE", self._org("badges", _seg(badge_id)))

    # -- Workforce ---------------------------------------------------------------------------------

    def iter_employee_pages(
        self, filters: Filters = None, sort: Sort = None, *, start_url: str | None = None
    ) -> Iterator[Page]:
        """Pages of employees (``GET /organizations/<org>/employees``, 50 per page)."""
        params = {"filter": build_filter(filters, EMPLOYEE_FILTERS), "sort": build_sort(sort, EMPLOYEE_SORTS)}
        return iter_pages(self.http, self._org("employees"), params, start_url=start_url)

    def iter_employees(self, filters: Filters = None, sort: Sort = None) -> Iterator[dict[str, Any]]:
        """Every employee matching ``filters`` (keys: name_or_email, employee_state, team)."""
        for page in self.iter_employee_pages(filters, sort):
            yield from page.items

    def get_employee(self, employee_id: str) -> dict[str, Any]:
        """One employee by Credly id, email or external_id."""
        return dict(self._get(self._org("employees", _seg(employee_id))))

    def create_employee(self, **fields: Any) -> dict[str, Any]:
        """Create an employee (email, first_name, last_name required).

        Retried on unknown outcomes: Credly rejects a second employee with the same email, so a repeat
        cannot create a duplicate.
        """
        body = build_employee_payload(fields, create=True)
        path = self._org("employees")
        return self.http.request("POST", path, json_body=body, idempotent=True, parse=credly_resource)

    def update_employee(self, employee_id: str, **fields: Any) -> dict[str, Any]:
        """Update an employee (``PUT .../employees/<id>``) with the given fields only."""
        body = build_employee_payload(fields, create=False)
        path = self._org("employees", _seg(employee_id))
        return self.http.request("PUT", path, json_body=body, parse=credly_resource)

    def delete_employee(self, employee_id: str) -> None:
        """Delete an employee (``DELETE .../employees/<id>``)."""
        self.http.request("DELETE", self._org("employees", _seg(employee_id)))

    def send_invitations(
        self,
        employee_list: Iterable[str] | None = None,
        *,
        list_type: Literal["email", "external_id"] | None = None,
        statuses: Iterable[str] | None = None,
    ) -> dict[str, Any]:
        """Invite employees (``POST .../employees/send_invitations``); repeating it only re-sends emails."""
        body = build_invitation_payload(employee_list, list_type, statuses)
        path = self._org("employees", "send_invitations")
        return self.http.request("POST", path, json_body=body, idempotent=True, parse=credly_resource)

    def get_employee_data(self, employee_id: str) -> dict[str, Any]:
        """An employee's profile with their badges (``GET .../employees/<id>/data``)."""
        return dict(self._get(self._org("employees", _seg(employee_id), "data")))

    def iter_employee_external_badge_pages(
        self, employee_id: str | None = None, *, per: int = 50, start_url: str | None = None
    ) -> Iterator[Page]:
        """Pages of employees' external badges (``GET .../employee_external_badges``).

        :param employee_id: only this employee (external id or Credly uuid: ``filter[employee][id]``).
        :param per: records per page, 1 to 50 (Credly returns at most 50).
        :param start_url: resume from a saved :attr:`Page.next_url`.
        """
        if isinstance(per, bool) or not isinstance(per, int) or not 1 <= per <= 50:
            raise ValueError(f"per must be an integer from 1 to 50, got {per!r}")
        if employee_id is not None and not str(employee_id).strip():
            raise ValueError("employee_id must not be blank")
        params = {"filter[employee][id]": employee_id, "per": per}
        return iter_pages(self.http, self._org("employee_external_badges"), params, start_url=start_url)

    def iter_employee_external_badges(
        self, employee_id: str | None = None, *, per: int = 50
    ) -> Iterator[dict[str, Any]]:
        """External badges of employees, optionally of one employee (see
        :meth:`iter_employee_external_badge_pages`)."""
        for page in self.iter_employee_external_badge_pages(employee_id, per=per):
            yield from page.items
