"""Credly API routes: request parsing, auth, pagination and the endpoint handlers."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from . import render
from .errors import MSG_FORBIDDEN, MSG_UNAUTHORIZED, EmulatorRefusal, error_payload, not_found
from .filters import FilterError, apply_sort, compile_badge_filter, parse_pairs, parse_sort, split_list

if TYPE_CHECKING:
    from email.message import Message

    from .state import AuthToken, EmulatorState
    from .store import Template

MAX_PER_PAGE = 50
BADGE_FORMATS = ("default", "minimal")


@dataclass
class Request:
    """One parsed API request (``path`` is relative to ``/v1``)."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: Message
    body: bytes
    base_url: str
    params: dict[str, str] = field(default_factory=dict)

    def arg(self, name: str) -> str | None:
        """Last value of a query parameter."""
        values = [v for k, v in self.query if k == name]
        return values[-1] if values else None

    def json_object(self) -> dict[str, Any]:
        """Request body as a JSON object (empty body -> ``{}``); 400 otherwise."""
        if not self.body.strip():
            return {}
        try:
            value = json.loads(self.body)
        except ValueError:
            raise bad_request("Request body is not valid JSON") from None
        if not isinstance(value, dict):
            raise bad_request("Request body must be a JSON object")
        return value

    def url(self, **replace: Any) -> str:
        """Absolute URL of this request with some query parameters replaced."""
        query = [(k, v) for k, v in self.query if k not in replace]
        query += [(k, str(v)) for k, v in replace.items()]
        return f"{self.base_url}{self.path}?{urlencode(query)}"


@dataclass
class Response:
    """Status, JSON payload (``None`` = no body) and extra headers."""

    status: int
    payload: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: str | None = None
    """Pre-serialized JSON body (used instead of ``payload`` when set)."""


Handler = Callable[["EmulatorState", Request], Response]


def bad_request(message: str) -> EmulatorRefusal:
    """400 error."""
    return EmulatorRefusal(400, error_payload(message))


def ok(data: Any, status: int = 200, **headers: str) -> Response:
    """``{"data": ..., "metadata": {}}`` response."""
    return Response(status, {"data": data, "metadata": {}}, dict(headers))


# ---------------------------------------------------------------------- pagination
def page_args(state: EmulatorState, req: Request) -> tuple[int, int]:
    """``page`` (>= 1) and ``per`` (capped at 50) query parameters."""
    try:
        page = int(req.arg("page") or 1)
        per = min(int(req.arg("per") or MAX_PER_PAGE), MAX_PER_PAGE)
    except ValueError:
        raise bad_request("page and per must be integers") from None
    if page < 1 or per < 1:
        raise bad_request("page and per must be positive")
    if state.max_page is not None and page > state.max_page:
        raise bad_request(f"Page {page} is too large; use the high volume endpoint instead")
    return page, per


def paged(
    req: Request, items: Sequence[Any], total: int, page: int, per: int, fn: Callable[[Any], Any]
) -> Response:
    """Page-number response with Credly's pagination metadata (absolute URLs)."""
    pages = -(-total // per)
    meta = {
        "count": len(items),
        "current_page": page,
        "total_count": total,
        "total_pages": pages,
        "per": per,
        "previous_page_url": req.url(page=page - 1) if page > 1 else None,
        "next_page_url": req.url(page=page + 1) if page < pages else None,
    }
    return Response(200, {"data": [fn(x) for x in items], "metadata": meta})


def paged_list(
    state: EmulatorState, req: Request, items: Sequence[Any], fn: Callable[[Any], Any]
) -> Response:
    """Paginate an in-memory list."""
    page, per = page_args(state, req)
    start = (page - 1) * per
    return paged(req, items[start : start + per], len(items), page, per, fn)


def encode_cursor(filter_text: str, fmt: str, key: tuple[int, str]) -> str:
    """Opaque cursor: last ``(created_at, id)`` seen plus filter and format."""
    raw = json.dumps([key[0], key[1], filter_text, fmt], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str, tuple[int, str]]:
    """Inverse of ``encode_cursor``; 400 on garbage."""
    try:
        created, bid, filter_text, fmt = json.loads(
            base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        )
        if not isinstance(created, int) or not all(isinstance(x, str) for x in (bid, filter_text, fmt)):
            raise ValueError(cursor)
    except (ValueError, TypeError, binascii.Error):
        raise bad_request("Invalid cursor") from None
    return filter_text, fmt, (created, bid)


# ---------------------------------------------------------------------- organization
def organizations_list(state: EmulatorState, req: Request) -> Response:
    return paged_list(state, req, [state.org], dict)


def organization_get(state: EmulatorState, req: Request) -> Response:
    return ok(dict(state.org))


def organization_update(state: EmulatorState, req: Request) -> Response:
    return ok(state.update_org(req.json_object()))


def events_list(state: EmulatorState, req: Request) -> Response:
    return paged_list(state, req, state.events, render.event)


def event_get(state: EmulatorState, req: Request) -> Response:
    return ok(render.event(state.get_event(req.params["id"])))


def tokens_list(state: EmulatorState, req: Request) -> Response:
    return paged_list(state, req, state.tokens, lambda t: render.authorization_token(state, t))


# ---------------------------------------------------------------------- badge templates
TEMPLATE_SORT_KEYS = ("name", "created_at", "updated_at")


def _template_predicate(key: str, value: str) -> Callable[[Template], bool]:
    if key == "name":
        return lambda t: value.lower() in t.name.lower()
    if key == "state":
        states = set(split_list(value))
        return lambda t: ("archived" if t.archived else "active") in states
    if key == "public":
        if value not in ("true", "false"):
            raise FilterError(f"Invalid filter 'public': {value!r} is not true or false")
        return lambda t: value == "true"  # every emulated template is public
    raise FilterError(f"Invalid filter key {key!r}; allowed: name, public, state")


def badge_templates_list(state: EmulatorState, req: Request) -> Response:
    predicates = [_template_predicate(k, v) for k, v in parse_pairs(req.arg("filter"))]
    rows = [t for t in state.templates if all(p(t) for p in predicates)]
    spec = parse_sort(req.arg("sort"), TEMPLATE_SORT_KEYS)
    keys: dict[str, Callable[[Template], Any]] = {
        "name": lambda t: t.name,
        "created_at": lambda t: t.created_ms,
        "updated_at": lambda t: t.created_ms,
    }
    apply_sort(rows, spec, keys)
    return paged_list(state, req, rows, lambda t: render.template_full(state, t))


def badge_template_get(state: EmulatorState, req: Request) -> Response:
    template = state.store.template_by_id.get(req.params["id"])
    if template is None:
        raise not_found("Badge template")
    return ok(render.template_full(state, template))


# ---------------------------------------------------------------------- badges
def _badge_response(state: EmulatorState, req: Request, r: int, status: int) -> Response:
    location = f"{req.base_url}/organizations/{state.org_id}/badges/{state.store.ids[r]}"
    headers = {"Location": location} if status == 201 else {}
    return ok(render.badge_full(state, r), status, **headers)


def badges_list(state: EmulatorState, req: Request) -> Response:
    page, per = page_args(state, req)
    rows, total = state.list_badges(req.arg("filter"), req.arg("sort"), page, per)
    return paged(req, rows, total, page, per, lambda r: render.badge_full(state, r))


def badges_high_volume(state: EmulatorState, req: Request) -> Response:
    if req.arg("sort") is not None:
        raise bad_request("The sort parameter is not supported by the high volume endpoint")
    cursor = req.arg("cursor")
    after: tuple[int, str] | None = None
    if cursor:
        filter_text, fmt, after = decode_cursor(cursor)
    else:
        filter_text, fmt = req.arg("filter") or "", req.arg("badge_format") or "default"
    if fmt not in BADGE_FORMATS:
        raise bad_request(f"Invalid badge_format {fmt!r}; allowed: default, minimal")
    flt = compile_badge_filter(state.store, filter_text, state.org_id)
    rows, more = state.high_volume_page(flt, after, state.hv_page_size)
    state.stats.count_cursor(filter_text)
    next_url = None
    if more and rows:
        token = encode_cursor(filter_text, fmt, state.store.key(rows[-1]))
        next_url = f"{req.base_url}{req.path}?{urlencode({'cursor': token})}"
    meta = json.dumps({"next_page_url": next_url})
    if fmt == "minimal":
        items = ",".join(render.badge_minimal_json(state, r) for r in rows)
        return Response(200, raw=f'{{"data":[{items}],"metadata":{meta}}}')
    return Response(
        200, {"data": [render.badge_hv_default(state, r) for r in rows], "metadata": json.loads(meta)}
    )


def badge_create(state: EmulatorState, req: Request) -> Response:
    return _badge_response(state, req, state.issue_badge_row(req.json_object()), 201)


def badge_get(state: EmulatorState, req: Request) -> Response:
    r = state.store.lookup(req.params["id"])
    if r is None:
        raise not_found("Badge")
    return _badge_response(state, req, r, 200)


def badge_replace(state: EmulatorState, req: Request) -> Response:
    return _badge_response(state, req, state.replace_badge_row(req.params["id"], req.json_object()), 201)


def badge_revoke(state: EmulatorState, req: Request) -> Response:
    return _badge_response(state, req, state.revoke_badge_row(req.params["id"], req.json_object()), 200)


def badge_delete(state: EmulatorState, req: Request) -> Response:
    state.delete_badge(req.params["id"])
    return Response(204)


# ---------------------------------------------------------------------- workforce
def employees_list(state: EmulatorState, req: Request) -> Response:
    rows = state.workforce.query(req.arg("filter"), req.arg("sort"))
    return paged_list(state, req, rows, render.employee)


def employee_create(state: EmulatorState, req: Request) -> Response:
    return ok(render.employee(state.create_employee(req.json_object())), 201)


def employee_get(state: EmulatorState, req: Request) -> Response:
    return ok(render.employee(state.employee(req.params["id"])))


def employee_update(state: EmulatorState, req: Request) -> Response:
    return ok(render.employee(state.update_employee(req.params["id"], req.json_object())))


def employee_delete(state: EmulatorState, req: Request) -> Response:
    state.delete_employee(req.params["id"])
    return Response(204)


def employees_invite(state: EmulatorState, req: Request) -> Response:
    return Response(200, {"data": {"resend_start": state.send_invitations(req.json_object())}})


def employee_data(state: EmulatorState, req: Request) -> Response:
    emp = state.employee(req.params["id"])
    return ok(render.employee_data(state, emp, state.employee_badge_rows(emp)))


def external_badges_list(state: EmulatorState, req: Request) -> Response:
    wanted = req.arg("filter[employee][id]")
    if wanted is None and (req.arg("filter") or "").startswith("employee::"):
        wanted = (req.arg("filter") or "")[len("employee::") :]
    emp = state.workforce.find(wanted) if wanted else None
    items = [x for x in state.workforce.external_badges if wanted is None or (emp and x[0] == emp.id)]

    def fn(item: tuple[str, dict[str, Any]]) -> dict[str, Any]:
        owner = state.workforce.by_id[item[0]]
        return {
            "employee": {"id": owner.id, "external_id": owner.external_id},
            "external_badge": dict(item[1]),
        }

    return paged_list(state, req, items, fn)


# ---------------------------------------------------------------------- routing
_ORG = r"/organizations/(?P<org>[^/]+)"
_ROUTES: list[tuple[str, str, str, Handler]] = [
    ("GET", r"/organizations", "organizations.list", organizations_list),
    ("GET", _ORG, "organizations.get", organization_get),
    ("PUT", _ORG, "organizations.update", organization_update),
    ("GET", _ORG + r"/events", "events.list", events_list),
    ("GET", _ORG + r"/events/(?P<id>[^/]+)", "events.get", event_get),
    ("GET", _ORG + r"/authorization_tokens", "authorization_tokens.list", tokens_list),
    ("GET", _ORG + r"/badge_templates", "badge_templates.list", badge_templates_list),
    ("GET", _ORG + r"/badge_templates/(?P<id>[^/]+)", "badge_templates.get", badge_template_get),
    ("GET", _ORG + r"/badges", "badges.list", badges_list),
    ("POST", _ORG + r"/badges", "badges.create", badge_create),
    ("GET", _ORG + r"/badges/(?P<id>[^/]+)", "badges.get", badge_get),
    ("DELETE", _ORG + r"/badges/(?P<id>[^/]+)", "badges.delete", badge_delete),
    ("POST", _ORG + r"/badges/(?P<id>[^/]+)/replace", "badges.replace", badge_replace),
    ("PUT", _ORG + r"/badges/(?P<id>[^/]+)/revoke", "badges.revoke", badge_revoke),
    ("GET", _ORG + r"/high_volume_issued_badge_search", "badges.high_volume", badges_high_volume),
    ("GET", _ORG + r"/employees", "employees.list", employees_list),
    ("POST", _ORG + r"/employees", "employees.create", employee_create),
    ("POST", _ORG + r"/employees/send_invitations", "employees.send_invitations", employees_invite),
    ("GET", _ORG + r"/employees/(?P<id>[^/]+)", "employees.get", employee_get),
    ("PUT", _ORG + r"/employees/(?P<id>[^/]+)", "employees.update", employee_update),
    ("DELETE", _ORG + r"/employees/(?P<id>[^/]+)", "employees.delete", employee_delete),
    ("GET", _ORG + r"/employees/(?P<id>[^/]+)/data", "employees.data", employee_data),
    ("GET", _ORG + r"/employee_external_badges", "employee_external_badges.list", external_badges_list),
]
ROUTES = [(m, re.compile(p + r"/?"), kind, fn) for m, p, kind, fn in _ROUTES]


def resolve(method: str, path: str) -> tuple[Handler | None, str, dict[str, str]]:
    """Find the handler for ``path`` (relative to /v1). Kind is ``not_found`` or ``method_not_allowed``."""
    kind = "not_found"
    for route_method, pattern, route_kind, fn in ROUTES:
        match = pattern.fullmatch(path)
        if match is None:
            continue
        if route_method == method:
            return fn, route_kind, match.groupdict()
        kind = "method_not_allowed"
    return None, kind, {}


def authorized(state: EmulatorState, header: str | None) -> AuthToken | None:
    """The organization's token named by HTTP Basic (the token as username, an empty password), if any."""
    if not header or not header.startswith("Basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    value, sep, password = decoded.partition(":")
    if not sep or password:
        return None
    return state.token_for(value)


def dispatch(state: EmulatorState, req: Request, handler: Handler | None, kind: str) -> Response:
    """Authenticate, check the org, run the handler and map errors to responses."""
    try:
        token = authorized(state, req.headers.get("Authorization"))
        if token is None:
            return Response(401, error_payload(MSG_UNAUTHORIZED))
        if not token.allows(req.method):
            return Response(403, error_payload(MSG_FORBIDDEN))
        if handler is None:
            status = 405 if kind == "method_not_allowed" else 404
            return Response(status, error_payload("Method not allowed" if status == 405 else "Not found"))
        if req.params.get("org", state.org_id) != state.org_id:
            raise not_found("Organization")
        with state.lock:
            return handler(state, req)
    except EmulatorRefusal as exc:
        return Response(exc.status, exc.payload, exc.headers)
    except FilterError as exc:
        return Response(400, error_payload(str(exc)))
