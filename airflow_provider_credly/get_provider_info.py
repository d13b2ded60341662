"""Provider metadata read by Airflow's providers manager (entry point ``apache_airflow_provider``)."""

from __future__ import annotations

from typing import Any

from airflow_provider_credly import __version__

CREDLY_UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema", "login", "port"],
    "relabeling": {"host": "API base URL", "password": "Authorization token"},
    "placeholders": {
        "host": "https://api.credly.com/v1 (sandbox: https://sandbox-api.credly.com/v1)",
        "password": "Organization authorization token",
        "extra": '{"organization_id": "<uuid>", "timeout": 60, "max_retries": 5}',
        "organization_id": "Credly organization id (uuid)",
    },
}

CREDLY_CONN_FIELDS: dict[str, Any] = {
    "organization_id": {"label": "Organization ID", "schema": {"type": ["string", "null"]}},
    "timeout": {"label": "Read timeout (s)", "schema": {"type": ["number", "null"], "default": 60}},
    "max_retries": {"label": "Retries on 429/5xx", "schema": {"type": ["integer", "null"], "default": 5}},
    "token_lifetime_days": {
        "label": "Token lifetime (days)",
        "schema": {"type": ["number", "null"], "default": 180},
    },
    "token_warn_days": {
        "label": "Warn when fewer token days left (0: never)",
        "schema": {"type": ["number", "null"], "default": 30},
    },
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
                "schema": {"type": ["string", "null"], "enum": ["us", "eu", "au", "ca", "sg", None]},
            },
            "client_id": {
                "label": "OAuth2 client id",
                "schema": {"type": ["string", "null"], "default": "public"},
            },
            "scope": {"label": "OAuth2 scope", "schema": {"type": ["string", "null"]}},
            "timeout": {"label": "Read timeout (s)", "schema": {"type": ["number", "null"], "default": 60}},
            "max_retries": {
                "label": "Retries on 429/5xx",
                "schema": {"type": ["integer", "null"], "default": 5},
            },
        },
        "ui-field-behaviour": {
            "hidden-fields": ["schema", "port"],
            "relabeling": {"host": "API base URL", "login": "User name (e-mail)", "password": "Password"},
            "placeholders": {
                "host": "https://api.badgr.io (EU: https://api.eu.badgr.io); empty = extra region",
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
