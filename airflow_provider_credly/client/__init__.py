"""The HTTP core and API clients. Importable without Airflow."""

from __future__ import annotations

from airflow_provider_credly.client.auth import BasicTokenAuth
from airflow_provider_credly.client.credly import DEFAULT_BASE_URL, SANDBOX_BASE_URL, CredlyClient
from airflow_provider_credly.client.errors import (
    ApiConnectionError,
    ApiError,
    AuthenticationError,
    BadRequestError,
    MalformedResponseError,
    NotFoundError,
    RateLimitError,
    ServerError,
    UnsafeUrlError,
    ValidationError,
)
from airflow_provider_credly.client.http import ApiResponse, HttpClient
from airflow_provider_credly.client.pagination import Page, iter_items, iter_pages
from airflow_provider_credly.client.payloads import PayloadError
from airflow_provider_credly.client.retry import RetryPolicy

__all__ = [
    "DEFAULT_BASE_URL",
    "SANDBOX_BASE_URL",
    "ApiConnectionError",
    "ApiError",
    "ApiResponse",
    "AuthenticationError",
    "BadRequestError",
    "BasicTokenAuth",
    "CredlyClient",
    "HttpClient",
    "MalformedResponseError",
    "NotFoundError",
    "Page",
    "PayloadError",
    "RateLimitError",
    "RetryPolicy",
    "ServerError",
    "UnsafeUrlError",
    "ValidationError",
    "iter_items",
    "iter_pages",
]
