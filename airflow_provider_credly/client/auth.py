"""Credential holders that keep secrets out of ``repr``, logs and errors."""

from __future__ import annotations

import base64
import hmac

import requests
from requests.auth import AuthBase

__all__ = ["BasicTokenAuth"]


class BasicTokenAuth(AuthBase):
    """Credly's scheme: HTTP Basic with the organization's authorization token as the user name and an
    empty password.

    :param token: the authorization token.
    """

    def __init__(self, token: str) -> None:
        if not token or not token.strip():
            raise ValueError("an authorization token is required")
        self._header = "Basic " + base64.b64encode(f"{token.strip()}:".encode()).decode("ascii")

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = self._header
        return r

    def matches(self, candidate: object) -> bool:
        """Whether ``candidate`` is this token, compared in constant time (a token listed by Credly is
        recognised without this object ever handing its own value out)."""
        if not isinstance(candidate, str) or not candidate.strip():
            return False
        other = "Basic " + base64.b64encode(f"{candidate.strip()}:".encode()).decode("ascii")
        return hmac.compare_digest(other.encode(), self._header.encode())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(token=***)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BasicTokenAuth) and other._header == self._header

    def __hash__(self) -> int:
        return hash(self._header)
