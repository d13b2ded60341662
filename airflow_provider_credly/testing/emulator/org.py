"""The emulated organization's initial record."""

from __future__ import annotations

from typing import Any

from .render import IMAGE_URL, WEB
from .util import stable_uuid


def seed_org(org_id: str) -> dict[str, Any]:
    """Initial organization record."""
    slug = "emulated-organization"
    return {
        "id": org_id,
        "name": "Emulated Organization",
        "website_url": "https://www.example.com/",
        "webhook_url": None,
        "contact_email": "hello@example.com",
        "legal_contact_email": "legal@example.com",
        "technical_contact_email": "tech@example.com",
        "zip_or_postal_code": "55437",
        "organization_type": "Education",
        "bio": "Emulated organization for local testing",
        "twitter_url": "https://twitter.com/example",
        "vanity_slug": slug,
        "facebook_url": None,
        "linked_in_url": None,
        "linked_in_org_id": None,
        "city": "Bloomington",
        "address": "1313 Mockingbird Lane",
        "primary_hex_color": None,
        "support_email": "support@example.com",
        "support_url": "https://example.com/support",
        "allow_saml_debug": False,
        "allowed_webhooks": [],
        "enable_blockchain": False,
        "print_method": None,
        "pdf_id": None,
        "internationalize_badge_templates": False,
        "integrated_with_faethm": False,
        "hide_subscription": False,
        "workforce_enabled": True,
        "linkedin_a2p_url": None,
        "location": "1313 Mockingbird Lane Bloomington Minnesota 55437 United States",
        "country": "United States",
        "state_or_province": "Minnesota",
        "created_at": "2014-04-01T14:41:00.000Z",
        "updated_at": "2014-04-01T14:41:00.000Z",
        "vanity_url": f"{WEB}/org/{slug}",
        "verified_at": "2018-04-08T17:57:34.595Z",
        "verified": True,
        "require_template_detail_attributes": False,
        "photo": {"id": stable_uuid(org_id, "photo"), "url": "/system/images/org/large_image.png"},
        "photo_url": IMAGE_URL,
        "has_employees": True,
    }
