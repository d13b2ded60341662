"""JSON shapes of the Credly API (badges, templates, organizations, employees, events, tokens)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from json.encoder import encode_basestring as _encode_str
from typing import TYPE_CHECKING, Any

from .store import FLAG_PRIVATE, STATES
from .util import (
    HMS,
    MILLIS,
    MS_PER_DAY,
    NONE_TS,
    day_or_none,
    day_str,
    iso_ms,
    slugify,
    stable_uuid,
    user_id_for,
)

if TYPE_CHECKING:
    from .faults import OddValues
    from .state import AuthToken, EmulatorState, Event
    from .store import Template
    from .workforce import Employee

WEB = "https://www.credly.com"
API = "https://api.credly.com/v1"
IMAGE_URL = "https://cdn.example.com/path/to/image.png"
_COUNTRY_CODES = {
    "United States": "USA",
    "Canada": "CAN",
    "Germany": "DEU",
    "United States of America": "USA",
}


def org_entity(state: EmulatorState) -> dict[str, Any]:
    """Organization as embedded in ``created_by`` / ``issuer.entities[].entity``."""
    org = state.org
    return {
        "type": "Organization",
        "id": org["id"],
        "name": org["name"],
        "url": f"{API}/organizations/{org['id']}",
        "vanity_url": org["vanity_url"],
        "internationalize_badge_templates": False,
        "share_to_ziprecruiter": True,
        "twitter_url": org["twitter_url"],
        "verified": True,
    }


def issuer(state: EmulatorState) -> dict[str, Any]:
    """``issuer`` block of the full badge shape."""
    entity = org_entity(state)
    return {
        "summary": f"issued by {entity['name']}",
        "entities": [{"label": "Issued by", "primary": True, "entity": entity}],
    }


def _image(t: Template) -> dict[str, Any]:
    return {"id": t.image_id, "url": f"/system/images/{t.image_id}/image.png"}


def template_full(state: EmulatorState, t: Template) -> dict[str, Any]:
    """Full ``badge_template`` object."""
    org = state.org
    created = iso_ms(t.created_ms)
    return {
        "primary_badge_template_id": None,
        "variant_name": None,
        "id": t.id,
        "allow_duplicate_badges": t.allow_duplicates,
        "description": f"Earners of {t.name} demonstrated {', '.join(t.skills)}.",
        "default_expires_at": None,
        "default_expires_at_date": None,
        "default_expires_at_type": None,
        "earn_this_badge_url": None,
        "enable_earn_this_badge": False,
        "enable_detail_attribute_visibility": True,
        "global_activity_url": "https://www.example.com/activity",
        "job_board_url": None,
        "lock_badge_state": False,
        "name": t.name,
        "state": "archived" if t.archived else "active",
        "public": True,
        "badges_count": t.badges_count,
        "recipient_type": "User",
        "send_expiring_badge_notifications": False,
        "settings_enable_related_badges": True,
        "show_badge_lmi": False,
        "show_lmi_jobs": False,
        "show_skill_tag_links": True,
        "vanity_slug": t.vanity_slug,
        "record_to_blockchain": None,
        "translatable": False,
        "printing_disabled": False,
        "visibility": "public",
        "variants_allowed": False,
        "variant_type": None,
        "allow_delete": False,
        "allow_archive": True,
        "available_locales": [],
        "only_one_skill_required": False,
        "linkedin_share_default_message": "View my verified achievement from @Org_Name.",
        "level": None,
        "time_to_earn": None,
        "cost": None,
        "type_category": None,
        "criteria_url_name": None,
        "criteria_url": None,
        "certification": True,
        "state_updated_at": None,
        "created_at": created,
        "updated_at": created,
        "show_template_settings": False,
        "get_issue_count": t.badges_count,
        "get_variants_issue_count": 0,
        "image": _image(t),
        "image_url": IMAGE_URL,
        "url": f"{org['vanity_url']}/badge/{t.vanity_slug}",
        "owner": {
            "type": "Organization",
            "id": org["id"],
            "name": org["name"],
            "enable_blockchain": False,
            "url": f"{API}/organizations/{org['id']}",
            "vanity_url": org["vanity_url"],
            "vanity_slug": org["vanity_slug"],
            "verified": True,
            "viewable": True,
        },
        "alignments": [
            {
                "id": t.alignment_id,
                "name": f"{t.name} Alignment",
                "url": "https://www.example.com/alignment",
                "description": "Industry framework alignment",
            }
        ],
        "recommendations": [],
        "required_badge_templates": [],
        "badge_template_activities": [],
        "skills": list(t.skills),
        "endorsements": [],
    }


def _evidence(state: EmulatorState, r: int) -> list[dict[str, Any]]:
    store = state.store
    if r >= store.n_seeded:
        return [dict(item) for item in store.extra[r].evidence]
    if r % 5:
        return []
    return [
        {
            "id": stable_uuid(store.ids[r], "evidence"),
            "type": "UrlEvidence",
            "name": "Acclaim",
            "description": "Description in URL evidence is optional",
            "value": f"https://lms.example.com/evidence/{r % store.earners}",
        }
    ]


def user(state: EmulatorState, r: int) -> dict[str, Any]:
    """Full ``user`` object (email obfuscated like the real API)."""
    store = state.store
    uid = user_id_for(store.email(r))
    return {
        "id": uid,
        "email": f"{uid}@example.com",
        "first_name": store.first_name(r),
        "middle_name": store.middle_name(r),
        "last_name": store.last_name(r),
        "current_position_name": "*****",
        "current_organization_name": "*****",
        "confirmed": True,
        "photo": None,
        "photo_url": None,
        "url": f"{WEB}/users/{slugify(store.issued_to(r))}.{uid[:8]}",
    }


def _common(state: EmulatorState, r: int) -> dict[str, Any]:
    """Fields shared (in this order) by every badge shape."""
    store = state.store
    _, first, middle, last, ieid = store.person(r)
    return {
        "id": store.ids[r],
        "issued_to": f"{first} {middle} {last}" if middle else f"{first} {last}",
        "issued_to_first_name": first,
        "issued_to_middle_name": middle,
        "issued_to_last_name": last,
        "issuer_earner_id": ieid,
        "locale": store.extra[r].locale if r >= store.n_seeded else "en",
        "public": store.is_public(r),
    }


def badge_full(state: EmulatorState, r: int) -> dict[str, Any]:
    """Default badge shape (issue / replace / revoke / list / events)."""
    store = state.store
    t = store.templates[store.template[r]]
    country, province = store.location(r)
    bid = store.ids[r]
    out: dict[str, Any] = {
        "user": user(state, r),
        "created_by": org_entity(state),
        "issuer": issuer(state),
        "printing_enabled": False,
        "print_method": None,
        "badge_template": template_full(state, t),
    }
    out.update(_common(state, r))
    out.update(
        {
            "translate_metadata": False,
            "replacement_badge_id": store.id_of(store.replacement.get(r)),
            "replaces_badge_id": store.id_of(store.replaces.get(r)),
            "revocation_reason": store.revocation_reason(r),
            "state": store.state_name(r),
            "suppress_badge_notification_email": r >= store.n_seeded and store.extra[r].suppress_email,
            "updated_at": iso_ms(store.updated[r]),
            "completed_pathway_id": None,
            "recipient_email": store.email(r),
            "country": country,
            "country_code": _COUNTRY_CODES.get(country or ""),
            "state_or_province": province,
            "created_at": iso_ms(store.created[r]),
            "expires_at": iso_ms(store.expires[r]),
            "expires_at_date": day_or_none(store.expires_day[r]),
            "issued_at": iso_ms(store.issued[r]),
            "issued_at_date": day_or_none(store.issued_day[r]),
            "state_updated_at": iso_ms(store.state_updated[r]),
            "is_private_badge": not store.is_public(r),
            "image": _image(t),
            "image_url": IMAGE_URL,
            "alignments": [{"name": f"{t.name} Alignment", "description": "Industry framework alignment"}],
            "evidence": _evidence(state, r),
            "accept_badge_url": f"{WEB}/badges/{bid}/accept",
            "badge_url": f"{WEB}/badges/{bid}",
        }
    )
    group = store.extra[r].group if r >= store.n_seeded else None
    if group:
        out["issuer_earner_group"] = dict(group)
    return _with_odd_values(state, r, out)


def _cached(state: EmulatorState, key: tuple[Any, ...], build: Any) -> Any:
    cache = state.render_cache
    value = cache.get(key)
    if value is None:
        value = cache[key] = build()
    return value


def _hv_template(state: EmulatorState, t: Template) -> dict[str, Any]:
    org = state.org
    created = iso_ms(t.created_ms)
    return {
        "id": t.id,
        "description": f"Earners of {t.name} demonstrated {', '.join(t.skills)}.",
        "global_activity_url": "https://www.example.com/activity",
        "name": t.name,
        "state": "archived" if t.archived else "active",
        "public": True,
        "vanity_slug": t.vanity_slug,
        "image": {"id": t.image_id, "url": IMAGE_URL},
        "image_url": IMAGE_URL,
        "url": f"{org['vanity_url']}/badge/{t.vanity_slug}",
        "owner": {"type": "Organization", "id": org["id"]},
        "state_updated_at": None,
        "created_at": created,
        "updated_at": created,
    }


def _hv_org(state: EmulatorState) -> tuple[dict[str, Any], dict[str, Any]]:
    org = state.org
    created_by = {"type": "Organization", "id": org["id"]}
    entity = {
        "label": "Issued by",
        "primary": True,
        "type": "Organization",
        "id": org["id"],
        "name": org["name"],
    }
    return created_by, {"summary": f"issued by {org['name']}", "entities": [entity]}


def badge_hv_default(state: EmulatorState, r: int) -> dict[str, Any]:
    """``badge_format=default`` shape of the high-volume endpoint."""
    store = state.store
    t = store.templates[store.template[r]]
    created_by, issuer_block = _cached(state, ("hv_org",), lambda: _hv_org(state))
    out = _common(state, r)
    out.update(
        {
            "recipient_email": store.email(r),
            "replacement_badge_id": store.id_of(store.replacement.get(r)),
            "revocation_reason": store.revocation_reason(r),
            "state": store.state_name(r),
            "suppress_badge_notification_email": r >= store.n_seeded and store.extra[r].suppress_email,
            "issued_at_date": day_or_none(store.issued_day[r]),
            "expires_at_date": day_or_none(store.expires_day[r]),
            "badge_url": f"{WEB}/badges/{store.ids[r]}",
            "updated_at": iso_ms(store.updated[r]),
            "created_at": iso_ms(store.created[r]),
            "expires_at": iso_ms(store.expires[r]),
            "issued_at": iso_ms(store.issued[r]),
            "state_updated_at": iso_ms(store.state_updated[r]),
            "badge_template": _cached(state, ("hv_tpl", t.index), lambda: _hv_template(state, t)),
            "created_by": created_by,
            "issuer": issuer_block,
            "user": {"id": user_id_for(store.email(r))},
        }
    )
    return _with_odd_values(state, r, out)


def _js(value: str | None) -> str:
    return "null" if value is None else _encode_str(value)


def _ts(ms: int) -> str:
    if ms == NONE_TS:
        return "null"
    days, rem = divmod(ms, MS_PER_DAY)
    return f'"{day_str(days)}T{HMS[rem // 1000]}{MILLIS[rem % 1000]}"'


def badge_minimal_json(state: EmulatorState, r: int) -> str:
    """``badge_format=minimal`` badge serialized straight to JSON (hot path of bulk exports)."""
    s = state.store
    t = s.templates[s.template[r]]
    tpl = state.render_cache.get(("min_tpl", t.index))
    if tpl is None:
        tpl = state.render_cache[("min_tpl", t.index)] = json.dumps(
            {"id": t.id, "name": t.name}, separators=(",", ":")
        )
    email, first, middle, last, ieid = s.person(r)
    full = f"{first} {middle} {last}" if middle else f"{first} {last}"
    bid = s.ids[r]
    text = (
        f'{{"id":"{bid}","issued_to":{_js(full)},"issued_to_first_name":{_js(first)},'
        f'"issued_to_middle_name":{_js(middle)},"issued_to_last_name":{_js(last)},'
        f'"issuer_earner_id":{_js(ieid)},'
        f'"locale":{_js(s.extra[r].locale if r >= s.n_seeded else "en")},'
        f'"public":{"false" if s.flags[r] & FLAG_PRIVATE else "true"},"recipient_email":{_js(email)},'
        f'"state":"{STATES[s.state[r]]}","badge_url":"{WEB}/badges/{bid}","updated_at":{_ts(s.updated[r])},'
        f'"created_at":{_ts(s.created[r])},"expires_at":{_ts(s.expires[r])},"issued_at":{_ts(s.issued[r])},'
        f'"state_updated_at":{_ts(s.state_updated[r])},"badge_template":{tpl},'
        f'"user":{{"id":"{user_id_for(email)}"}}}}'
    )
    odd = state.odd_values  # the one check of the hot path when odd_values_rate is 0
    return text if odd is None else _odd_json(text, odd, r)


def badge_minimal(state: EmulatorState, r: int) -> dict[str, Any]:
    """``badge_format=minimal`` shape of the high-volume endpoint (as a dict)."""
    result: dict[str, Any] = json.loads(badge_minimal_json(state, r))
    return result


#: the timestamp fields of a badge record that ``odd_values_rate`` reshapes
_ODD_TIMESTAMPS = ("updated_at", "created_at", "expires_at", "issued_at", "state_updated_at")
#: the offsets of the ``plus_two`` and ``minus_nine_thirty`` shapes (the same instant in another offset)
_ODD_OFFSETS = {
    "plus_two": timezone(timedelta(hours=2)),
    "minus_nine_thirty": timezone(-timedelta(hours=9, minutes=30)),
}
#: appended to the names of a ``stress`` / ``escaped`` record: a backslash, a tab, a quote, CR LF, text
#: ``COPY``'s NULL marker and end-of-data line, non-BMP letters and an emoji, an accent, U+2028
ODD_TEXT = ' O\\Neil\t"Q" \\N\r\n\\.\n\U0001d518\U0001d52b\U0001d526 \U0001f600 \u00e9\u2028'


def odd_badge(doc: dict[str, Any], kind: str, r: int) -> dict[str, Any]:
    """Give a badge record (any render, as a dict) the odd values of ``kind`` (one of
    ``faults.ODD_VALUE_KINDS``), in place; returns it. Every shape means what the usual one does: the same
    instants, a number where a text is expected, the same names plus :data:`ODD_TEXT`."""
    if kind == "number":
        if "issuer_earner_id" in doc:
            doc["issuer_earner_id"] = odd_number(r)
    elif kind in ("stress", "escaped"):
        for name in ("issued_to", "issued_to_last_name"):
            if isinstance(doc.get(name), str):
                doc[name] += ODD_TEXT
    else:
        odd_timestamps(doc, _ODD_TIMESTAMPS, kind)
    return doc


def odd_number(r: int) -> int:
    """The number record ``r`` of the ``number`` shape sends for a text: small, or beyond 64 bits (exact in
    JSON)."""
    return 2**64 + r if r % 2 else 1_000_000 + r


def odd_timestamps(doc: dict[str, Any], names: Sequence[str], kind: str) -> None:
    """Reshape ``doc``'s UTC timestamps ``names`` (``...Z``) into the shape ``kind``, in place."""
    for name in names:
        value = doc.get(name)
        if isinstance(value, str) and value.endswith("Z"):
            doc[name] = odd_timestamp(value, kind)


def odd_timestamp(text: str, kind: str) -> str:
    """``2025-08-06T14:41:00.123Z`` in the shape ``kind``, the same instant."""
    if kind == "naive":
        return text[:-1]
    if kind == "space":
        return text.replace("T", " ", 1)
    if kind == "micros":
        return text[:-1] + "000Z"
    if kind == "utc_offset":
        return text[:-1] + "+00:00"
    return datetime.fromisoformat(text).astimezone(_ODD_OFFSETS[kind]).isoformat(timespec="milliseconds")


def _with_odd_values(state: EmulatorState, r: int, doc: dict[str, Any]) -> dict[str, Any]:
    odd = state.odd_values
    kind = None if odd is None else odd.kind(r)
    return doc if kind is None else odd_badge(doc, kind, r)


def _odd_json(text: str, odd: OddValues, r: int) -> str:
    """A minimal record's JSON text with its odd values (``escaped``: every non-ASCII character as ``\\u``
    escapes, surrogate pairs for the non-BMP ones)."""
    kind = odd.kind(r)
    if kind is None:
        return text
    doc = odd_badge(json.loads(text), kind, r)
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=kind == "escaped")


def employee(e: Employee) -> dict[str, Any]:
    """Employee record as returned by the workforce endpoints."""
    location = ", ".join(x for x in (e.state_or_province, e.country) if x) or None
    return {
        "id": e.id,
        "email": e.email,
        "created_at": iso_ms(e.created_ms),
        "employee_state": e.employee_state,
        "employee_state_updated_at": iso_ms(e.state_updated_ms),
        "last_invitation_sent_at": iso_ms(e.invited_ms),
        "first_name": e.first_name,
        "last_name": e.last_name,
        "full_name": f"{e.first_name} {e.last_name}".strip(),
        "photo_url": None,
        "team": e.team,
        "external_id": e.external_id,
        "position_title": e.position_title,
        "manager_first_name": e.manager_first_name,
        "manager_last_name": e.manager_last_name,
        "manager_external_id": e.manager_external_id,
        "location": location,
        "country": e.country,
        "zip_code": e.zip_code,
        "state_or_province": e.state_or_province,
        "department": e.department,
        "organization_level_1": e.organization_level_1,
        "organization_level_2": e.organization_level_2,
        "organization_level_3": e.organization_level_3,
        "job_family": e.job_family,
    }


def employee_data(state: EmulatorState, e: Employee, rows: list[int]) -> dict[str, Any]:
    """``/employees/<id>/data``: the employee plus their badges."""
    store = state.store
    out = employee(e)
    out["bio"] = f"{e.first_name} works in {e.department or 'the organization'}."
    out["vanity_url"] = f"{WEB}/users/{slugify(out['full_name'])}"
    badges = []
    for r in rows:
        t = store.templates[store.template[r]]
        item = {k: v for k, v in _common(state, r).items() if k.startswith(("id", "issued_to"))}
        item.update(
            {
                "issued_at": iso_ms(store.issued[r]),
                "issued_at_date": day_or_none(store.issued_day[r]),
                "expires_at": iso_ms(store.expires[r]),
                "expires_at_date": day_or_none(store.expires_day[r]),
                "state": store.state_name(r),
                "public": store.is_public(r),
                "badge_template": {
                    "id": t.id,
                    "image": _image(t),
                    "image_url": IMAGE_URL,
                    "description": f"Earners of {t.name} demonstrated {', '.join(t.skills)}.",
                    "name": t.name,
                    "skills": list(t.skills),
                },
                "issuer": {"name": state.org["name"], "image_url": None},
            }
        )
        badges.append(_with_odd_values(state, r, item))
    out["badges"] = badges
    return out


def event(ev: Event) -> dict[str, Any]:
    """Organization event (badge snapshot embedded)."""
    out: dict[str, Any] = {
        "id": ev.id,
        "event_type": ev.event_type,
        "organization_id": ev.organization_id,
        "occurred_at": iso_ms(ev.occurred_ms),
    }
    out.update(ev.payload)
    return out


def authorization_token(state: EmulatorState, t: AuthToken) -> dict[str, Any]:
    """One authorization token as Credly lists it: the ``token`` value in clear text (clients must mask it)."""
    org = state.org
    return {
        "id": t.id,
        "token": t.token,
        "owner_id": org["id"],
        "description": t.description,
        "write_enabled": t.write_enabled,
        "read_enabled": t.read_enabled,
        "delete_enabled": t.delete_enabled,
        "created_at": iso_ms(t.created_ms),
        "owner": {
            "type": "Organization",
            "id": org["id"],
            "name": org["name"],
            "url": f"{API}/organizations/{org['id']}",
        },
    }
