"""Provider metadata read by Airflow's providers manager (entry point ``apache_airflow_provider``)."""

from __future__ import annotations

from typing import Any

from airflow_provider_credly import __version__

# Airflow's flexible form shows placeholders on the standard fields only; extra fields get help text
# ("description"). The port stays visible: on Airflow 3.3.2 the connection list's Test button answers
# 400 for a saved connection without a port (apache/airflow#73298), so users fill it in (443 for https).
# Field names avoid "token", "secret" and the like: Airflow masks extras whose names contain them.
PORT_PLACEHOLDER = "443 (set it: the Test button of Airflow 3.3.2 needs a port)"

CREDLY_UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema", "login"],
    "relabeling": {"host": "API base URL", "password": "Authorization token", "port": "Port"},
    "placeholders": {
        "host": "https://api.credly.com/v1 (sandbox: https://sandbox-api.credly.com/v1)",
        "port": PORT_PLACEHOLDER,
        "password": "Organization authorization token",
        "extra": '{"organization_id": "<uuid>", "timeout": 60, "max_retries": 5}',
    },
}

TIMEOUT_FIELD: dict[str, Any] = {
    "label": "Read timeout (s)",
    "description": "Seconds to wait for each answer before the request counts as failed and is retried.",
    "schema": {"type": ["number", "null"], "default": 60, "minimum": 1},
}
MAX_RETRIES_FIELD: dict[str, Any] = {
    "label": "Retries on 429/5xx",
    "description": "Retries of one request on 429, 5xx and dropped connections (backoff honours "
    "Retry-After); 0: none.",
    "schema": {"type": ["integer", "null"], "default": 5, "minimum": 0},
}
CONNECT_TIMEOUT_FIELD: dict[str, Any] = {
    "label": "Connect timeout (s)",
    "description": "Seconds to wait for the TCP and TLS connection before the attempt counts as failed.",
    "schema": {"type": ["number", "null"], "default": 10, "minimum": 1},
}
VERIFY_FIELD: dict[str, Any] = {
    "label": "TLS verification",
    "description": "true: check the server's certificate (the default); a file path: check it against that "
    "CA bundle; false: do not check (never in production).",
    "schema": {"type": ["string", "null"], "default": "true"},
}

CREDLY_CONN_FIELDS: dict[str, Any] = {
    "organization_id": {
        "label": "Organization ID",
        "description": "The Credly organization (a uuid) the tasks act for; empty: operators must name one.",
        "schema": {"type": ["string", "null"]},
    },
    "timeout": TIMEOUT_FIELD,
    "connect_timeout": CONNECT_TIMEOUT_FIELD,
    "max_retries": MAX_RETRIES_FIELD,
    "verify": VERIFY_FIELD,
    "lifetime_days": {
        "label": "Token lifetime (days)",
        "description": "How long Credly authorization tokens live after they are created (180 on Credly).",
        "schema": {"type": ["number", "null"], "default": 180, "minimum": 1},
    },
    "expiry_warn_days": {
        "label": "Warn when fewer token days left (0: never)",
        "description": "Tasks log a warning when the token has fewer days left than this.",
        "schema": {"type": ["number", "null"], "default": 30, "minimum": 0},
    },
}

CANVAS_REGIONS = {
    "us": "US (api.badgr.io)",
    "eu": "EU (api.eu.badgr.io)",
    "au": "Australia (api.au.badgr.io)",
    "ca": "Canada (api.ca.badgr.io)",
    "sg": "Singapore (api.sg.badgr.io)",
}

CONNECTION_TYPES: list[dict[str, Any]] = [
    {
        "connection-type": "credly",
        "hook-class-name": "airflow_provider_credly.hooks.credly.CredlyHook",
        "hook-name": "Credly",
        "conn-fields": CREDLY_CONN_FIELDS,
        "ui-field-behaviour": CREDLY_UI_FIELD_BEHAVIOUR,
    },
    {
        "connection-type": "canvas_credentials",
        "hook-class-name": "airflow_provider_credly.hooks.canvas_credentials.CanvasCredentialsHook",
        "hook-name": "Canvas Credentials (Badgr)",
        "conn-fields": {
            "region": {
                "label": "Region (when no host)",
                "description": "The Canvas Credentials region whose API is used when API base URL is empty "
                "(US when neither is set).",
                # no null in the enum: the form would offer it as a literal "null" choice
                "schema": {
                    "type": ["string", "null"],
                    "enum": list(CANVAS_REGIONS),
                    "values_display": CANVAS_REGIONS,
                },
            },
            "client_id": {
                "label": "OAuth2 client id",
                "description": "The OAuth2 client of the password grant; Canvas Credentials' own is public.",
                "schema": {"type": ["string", "null"], "default": "public"},
            },
            "scope": {
                "label": "OAuth2 scope",
                "description": "Space-separated scopes to ask for (e.g. rw:issuer rw:backpack); empty: the "
                "account's defaults.",
                "schema": {"type": ["string", "null"]},
            },
            "timeout": TIMEOUT_FIELD,
            "connect_timeout": CONNECT_TIMEOUT_FIELD,
            "max_retries": MAX_RETRIES_FIELD,
            "verify": VERIFY_FIELD,
        },
        "ui-field-behaviour": {
            "hidden-fields": ["schema"],
            "relabeling": {
                "host": "API base URL",
                "login": "User name (e-mail)",
                "password": "Password",
                "port": "Port",
            },
            "placeholders": {
                "host": "https://api.badgr.io (EU: https://api.eu.badgr.io); empty = extra region",
                "port": PORT_PLACEHOLDER,
                "login": "issuer-admin@example.edu",
                "extra": '{"region": "us", "client_id": "public", "timeout": 60, "max_retries": 5}',
            },
        },
    },
]


def get_provider_info() -> dict[str, Any]:
    """Describe the provider: its package, modules and connection types."""
    return {
        "package-name": "airflow-provider-credly",
        "name": "Credly",
        "description": "Credly and Canvas Credentials (Badgr) digital badges: hooks, operators, sensors "
        "and warehouse transfers.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Credly",
                "external-doc-url": "https://www.credly.com/docs",
                "tags": ["service"],
            },
            {
                "integration-name": "Canvas Credentials",
                "external-doc-url": "https://www.instructure.com/canvas/credentials",
                "tags": ["service"],
            },
        ],
        "hooks": [
            {"integration-name": "Credly", "python-modules": ["airflow_provider_credly.hooks.credly"]},
            {
                "integration-name": "Canvas Credentials",
                "python-modules": ["airflow_provider_credly.hooks.canvas_credentials"],
            },
        ],
        "operators": [
            {
                "integration-name": "Credly",
                "python-modules": [
                    "airflow_provider_credly.operators.badges",
                    "airflow_provider_credly.operators.badge_actions",
                    "airflow_provider_credly.operators.employees",
                ],
            },
            {
                "integration-name": "Canvas Credentials",
                "python-modules": ["airflow_provider_credly.operators.canvas_credentials"],
            },
        ],
        "sensors": [
            {
                "integration-name": "Credly",
                "python-modules": [
                    "airflow_provider_credly.sensors.badges",
                    "airflow_provider_credly.sensors.tokens",
                ],
            }
        ],
        "triggers": [
            {
                "integration-name": "Credly",
                "python-modules": [
                    "airflow_provider_credly.triggers.badges",
                    "airflow_provider_credly.triggers.events",
                ],
            }
        ],
        "transfers": [
            {
                "source-integration-name": "Credly",
                "target-integration-name": "Common SQL",
                "python-module": "airflow_provider_credly.transfers.credly_to_sql",
            },
            {
                "source-integration-name": "Canvas Credentials",
                "target-integration-name": "Common SQL",
                "python-module": "airflow_provider_credly.transfers.canvas_credentials_to_sql",
            },
        ],
        "connection-types": CONNECTION_TYPES,
        "extra-links": [
            "airflow_provider_credly.links.credly.CredlyBadgeLink",
            "airflow_provider_credly.links.credly.CredlyOrganizationLink",
        ],
    }
