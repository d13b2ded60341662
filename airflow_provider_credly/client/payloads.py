"""Request bodies for Credly, validated before anything is sent.

Each builder returns the JSON body, or raises :class:`PayloadError` (a ``ValueError``) that lists every
problem found, so a bulk job can report all bad rows at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from airflow_provider_credly.client.times import format_credly_datetime, parse_credly_datetime

__all__ = [
    "BADGE_LOCALES",
    "EMPLOYEE_FIELDS",
    "EVIDENCE_REQUIRED",
    "EVIDENCE_TYPES",
    "ISSUE_OPTIONAL",
    "ISSUE_REQUIRED",
    "ORGANIZATION_FIELDS",
    "REPLACE_OPTIONAL",
    "REPLACE_REQUIRED",
    "PayloadError",
    "build_employee_payload",
    "build_invitation_payload",
    "build_issue_payload",
    "build_organization_payload",
    "build_replace_payload",
    "build_revoke_payload",
    "email_problem",
]

ISSUE_REQUIRED = (
    "recipient_email",
    "issued_to_first_name",
    "issued_to_last_name",
    "badge_template_id",
    "issued_at",
)
ISSUE_OPTIONAL = (
    "issued_to_middle_name",
    "issuer_earner_id",
    "locale",
    "suppress_badge_notification_email",
    "expires_at",
    "country_name",
    "state_or_province",
    "issuer_earner_group",
    "evidence",
    "issued_to",
)
REPLACE_REQUIRED = ("badge_template_id", "issued_at")
REPLACE_OPTIONAL = (
    "recipient_email",
    "country_name",
    "expires_at",
    "issued_to",
    "issued_to_first_name",
    "issued_to_middle_name",
    "issued_to_last_name",
    "issuer_earner_id",
    "notification_message",
    "state_or_province",
    "evidence",
)
BADGE_LOCALES = ("en", "fr", "de", "ko", "ja", "zh-CN", "pt", "es-ES", "es-US", "fr-CA", "pt-BR")
EVIDENCE_TYPES = ("KeyValueGroupEvidence", "PlainTextEvidence", "UrlEvidence", "IdEvidence")
EMPLOYEE_FIELDS = (
    "email",
    "first_name",
    "last_name",
    "team",
    "external_id",
    "position_title",
    "manager_first_name",
    "manager_last_name",
    "manager_external_id",
    "country",
    "zip_code",
    "state_or_province",
    "department",
    "job_family",
    "organization_level_1",
    "organization_level_2",
    "organization_level_3",
)
EMPLOYEE_REQUIRED = ("email", "first_name", "last_name")
ORGANIZATION_FIELDS = (
    "name",
    "website_url",
    "webhook_url",
    "location",
    "zip_or_postal_code",
    "contact_email",
    "legal_contact_email",
    "organization_type",
    "bio",
    "twitter_url",
    "facebook_url",
    "photo",
    "city",
    "state_or_province",
    "country",
    "address",
    "hide_subscription",
)
INVITATION_STATUSES = ("created", "pending", "rejected")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# RFC 5321 section 4.5.3.1: longer local parts or addresses are refused by mail systems.
MAX_EMAIL_LOCAL = 64
MAX_EMAIL_LENGTH = 254
# Fields each documented evidence type carries in the reference's example; only UrlEvidence's
# ``description`` (and a pair's ``url``) are called optional, so the rest are required.
EVIDENCE_REQUIRED: Mapping[str, tuple[str, ...]] = {
    "KeyValueGroupEvidence": ("name", "values"),
    "PlainTextEvidence": ("title", "description"),
    "UrlEvidence": ("name", "value"),
    "IdEvidence": ("title", "description"),
}
KEY_VALUE_PAIR_REQUIRED = ("key", "value")


class PayloadError(ValueError):
    """A request body failed validation; ``problems`` lists every reason."""

    def __init__(self, what: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"invalid {what}: " + "; ".join(problems))


def _blank(value: Any) -> bool:
    """Nothing usable: ``None``, or text that is empty or only whitespace."""
    return value is None or (isinstance(value, str) and not value.strip())


def _check_fields(
    fields: Mapping[str, Any], required: Iterable[str], optional: Iterable[str], problems: list[str]
) -> dict[str, Any]:
    required = tuple(required)
    known = set(required) | set(optional)
    unknown = sorted(k for k in fields if k not in known)
    if unknown:
        problems.append(f"unknown field(s) {', '.join(unknown)}")
    missing = [k for k in required if _blank(fields.get(k))]
    if missing:
        problems.append(f"missing required field(s) {', '.join(missing)} (empty or whitespace only)")
    return {k: v for k, v in fields.items() if k in known and v is not None}


def _timestamp(body: dict[str, Any], key: str, problems: list[str], *, allow_false: bool = False) -> None:
    if key not in body:
        return
    value = body[key]
    if allow_false and value is False:
        return
    try:
        body[key] = format_credly_datetime(value)
    except ValueError as exc:
        problems.append(f"{key}: {exc}")


def email_problem(value: Any) -> str | None:
    """Why no mail system would accept ``value`` as an address (``None`` when it looks deliverable)."""
    if not isinstance(value, str) or not _EMAIL_RE.match(value.strip()):
        return "not an email address"
    text = value.strip()
    local, _, domain = text.rpartition("@")
    if len(local) > MAX_EMAIL_LOCAL:
        return f"not an email address (local part longer than {MAX_EMAIL_LOCAL} characters)"
    if len(text) > MAX_EMAIL_LENGTH:
        return f"not an email address (longer than {MAX_EMAIL_LENGTH} characters)"
    if any(not label for label in domain.split(".")):
        return "not an email address (empty label in the domain)"
    return None


def _email(body: dict[str, Any], key: str, problems: list[str]) -> None:
    value = body.get(key)
    if value is None:
        return
    problem = email_problem(value)
    if problem:
        problems.append(f"{key}: {value!r} is {problem}")
    else:
        body[key] = value.strip()


def _evidence(body: dict[str, Any], problems: list[str]) -> None:
    evidence = body.get("evidence")
    if evidence is None:
        return
    if not isinstance(evidence, list):
        problems.append("evidence must be a list of evidence objects")
        return
    for i, item in enumerate(evidence):
        if not isinstance(item, Mapping) or item.get("type") not in EVIDENCE_TYPES:
            problems.append(f"evidence[{i}] needs a type among {', '.join(EVIDENCE_TYPES)}")
            continue
        kind = item["type"]
        missing = [k for k in EVIDENCE_REQUIRED[kind] if _blank(item.get(k)) or item.get(k) == []]
        if missing:
            problems.append(f"evidence[{i}] ({kind}) needs {', '.join(missing)}")
        if kind == "KeyValueGroupEvidence" and "values" not in missing:
            _key_value_pairs(i, item.get("values"), problems)


def _key_value_pairs(i: int, values: Any, problems: list[str]) -> None:
    if not isinstance(values, list):
        problems.append(f"evidence[{i}].values must be a list of KeyValuePairEvidence objects")
        return
    for j, pair in enumerate(values):
        where = f"evidence[{i}].values[{j}]"
        if not isinstance(pair, Mapping) or pair.get("type") != "KeyValuePairEvidence":
            problems.append(f"{where} needs type KeyValuePairEvidence")
            continue
        missing = [k for k in KEY_VALUE_PAIR_REQUIRED if _blank(pair.get(k))]
        if missing:
            problems.append(f"{where} needs {', '.join(missing)}")


def _expiry_after_issue(body: Mapping[str, Any], problems: list[str]) -> None:
    """``expires_at`` strictly after ``issued_at`` (both already normalised; ``False``/blank skip)."""
    issued, expires = body.get("issued_at"), body.get("expires_at")
    if not isinstance(issued, str) or not isinstance(expires, str) or not expires:
        return
    try:
        if parse_credly_datetime(expires) <= parse_credly_datetime(issued):
            problems.append(f"expires_at ({expires}) must be after issued_at ({issued})")
    except ValueError:
        return  # already reported by _timestamp


def _issue_like(
    fields: Mapping[str, Any],
    required: tuple[str, ...],
    optional: tuple[str, ...],
    *,
    blank_expiry: bool = False,
) -> dict[str, Any]:
    problems: list[str] = []
    body = _check_fields(fields, required, optional, problems)
    _timestamp(body, "issued_at", problems)
    if blank_expiry and _blank(body.get("expires_at")) and "expires_at" in body:
        body["expires_at"] = ""  # "included but blank": the template's default expiry
    else:
        _timestamp(body, "expires_at", problems, allow_false=True)
    _expiry_after_issue(body, problems)
    _email(body, "recipient_email", problems)
    _evidence(body, problems)
    locale = body.get("locale")
    if locale is not None and locale not in BADGE_LOCALES:
        problems.append(f"locale {locale!r} is not one of {', '.join(BADGE_LOCALES)}")
    for key in ("suppress_badge_notification_email",):
        if key in body and not isinstance(body[key], bool):
            problems.append(f"{key} must be true or false")
    for key in ("badge_template_id", "issuer_earner_id", "issued_to_first_name", "issued_to_last_name"):
        if key in body and not isinstance(body[key], (str, int)):
            problems.append(f"{key} must be text")
        elif key in body:
            body[key] = str(body[key]).strip()
    if problems:
        raise PayloadError("badge", problems)
    return body


def build_issue_payload(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Body of ``POST /organizations/<org>/badges``.

    Required: recipient_email, issued_to_first_name, issued_to_last_name, badge_template_id, issued_at.
    ``issued_at``/``expires_at`` accept datetime, pendulum, date or strings; ``expires_at=False`` means
    "never expires"; ``None`` values are left out (the template's default applies). Required text must not
    be empty or whitespace only, ``expires_at`` must be after ``issued_at``, emails must fit RFC 5321's
    limits and each evidence item must carry its type's fields (see :data:`EVIDENCE_REQUIRED`).
    """
    return _issue_like(fields, ISSUE_REQUIRED, ISSUE_OPTIONAL)


def build_replace_payload(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Body of ``POST /organizations/<org>/badges/<id>/replace`` (required: badge_template_id, issued_at).

    Same rules as :func:`build_issue_payload`, except that ``expires_at=""`` (or whitespace) is sent blank:
    the reference's "included but blank", i.e. the template's default expiry. ``None`` leaves it out (the
    replaced badge's expiry rules apply) and ``False`` forces "never expires".
    """
    return _issue_like(fields, REPLACE_REQUIRED, REPLACE_OPTIONAL, blank_expiry=True)


def build_revoke_payload(
    reason: str, suppress_revoke_notification_email: bool | None = None
) -> dict[str, Any]:
    """Body of ``PUT /organizations/<org>/badges/<id>/revoke``."""
    if not isinstance(reason, str) or not reason.strip():
        raise PayloadError("revocation", ["a non-empty reason is required"])
    body: dict[str, Any] = {"reason": reason.strip()}
    if suppress_revoke_notification_email is not None:
        body["suppress_revoke_notification_email"] = bool(suppress_revoke_notification_email)
    return body


def build_employee_payload(fields: Mapping[str, Any], *, create: bool) -> dict[str, Any]:
    """Body of an employee create (email, first_name, last_name required) or update (email not sent).

    Required text must not be empty or whitespace only. An update may leave out first_name/last_name but
    not blank them: that would erase a name Credly requires (other fields may be blanked to clear them).
    """
    problems: list[str] = []
    optional = EMPLOYEE_FIELDS if create else tuple(f for f in EMPLOYEE_FIELDS if f != "email")
    body = _check_fields(fields, EMPLOYEE_REQUIRED if create else (), optional, problems)
    if not create:
        blanked = [k for k in EMPLOYEE_REQUIRED if k in body and _blank(body[k])]
        if blanked:
            problems.append(f"{', '.join(blanked)} must not be empty or whitespace only")
    _email(body, "email", problems)
    for key, value in list(body.items()):
        if key != "email" and not isinstance(value, (str, int)):
            problems.append(f"{key} must be text")
        elif key != "email":
            body[key] = str(value)
    if problems:
        raise PayloadError("employee", problems)
    return body


def build_invitation_payload(
    employee_list: Iterable[str] | None = None,
    list_type: str | None = None,
    statuses: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Body of ``POST /organizations/<org>/employees/send_invitations``."""
    problems: list[str] = []
    body: dict[str, Any] = {}
    if employee_list is not None:
        ids = [str(i) for i in employee_list]
        if list_type not in ("email", "external_id"):
            problems.append("list_type must be 'email' or 'external_id' when employee_list is given")
        body["employee_list"] = ids
        body["list_type"] = list_type
    elif list_type is not None:
        problems.append("list_type needs an employee_list")
    if statuses is not None:
        states = list(statuses)
        wrong = [s for s in states if s not in INVITATION_STATUSES]
        if wrong:
            problems.append(f"statuses accepts {', '.join(INVITATION_STATUSES)}; got {', '.join(wrong)}")
        body["statuses"] = states
    if problems:
        raise PayloadError("invitation", problems)
    return body


def build_organization_payload(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Body of ``PUT /organizations/<org>``."""
    problems: list[str] = []
    body = _check_fields(fields, (), ORGANIZATION_FIELDS, problems)
    if not body and not problems:
        problems.append("nothing to update")
    for key in ("contact_email", "legal_contact_email"):
        _email(body, key, problems)
    if problems:
        raise PayloadError("organization update", problems)
    return body
