"""API keys: who is calling.

With no keys configured (`GANSERVE_API_KEYS` empty) every caller is the owner "anonymous". With
keys, a `/v1` request needs `Authorization: Bearer <key>`; the owner recorded on its jobs and
datasets is a short SHA-256 digest of the key, so the key itself is never stored. Keys are compared
with `hmac.compare_digest`, against every configured key, so timing does not tell which matched.

Operators (`GANSERVE_OPERATOR_KEYS`, else the first API key) own the shared models: a model is
shared when its owner is an operator, "anonymous" (made before keys were configured) or unknown
(a folder an operator copied in). A caller sees the shared models and its own; it may change or
delete its own; an operator, or anyone when no keys are configured, may change or delete any.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from core.owners import ANONYMOUS, owner_of_key
from service.errors import ApiError

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def authenticate(authorization: str | None, keys: Sequence[str]) -> str:
    """The owner behind an `Authorization` header value; 401 `ApiError` when it is not allowed."""
    if not keys:
        return ANONYMOUS
    if not authorization or not authorization.strip():
        raise ApiError(
            401,
            "missing_api_key",
            "This service needs an API key: send 'Authorization: Bearer <key>'.",
            _CHALLENGE,
        )
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError(
            401,
            "invalid_api_key",
            "The Authorization header must have the form 'Bearer <key>'.",
            _CHALLENGE,
        )
    given = token.encode()
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(given, key.encode())
    if not matched:
        raise ApiError(401, "invalid_api_key", "The API key is not valid.", _CHALLENGE)
    return owner_of_key(token)


@dataclass(frozen=True)
class Caller:
    """Who is calling and what that allows: `owner` as recorded on what it creates, `operator`
    (an operator key, or no keys configured), `shared_owners` (the owners whose models all see)."""

    owner: str
    operator: bool
    shared_owners: frozenset[str]

    def sees(self, owner: str | None) -> bool:
        """Whether this caller may see (and use) something `owner` owns: its own, shared, or
        anything for an operator."""
        return self.operator or owner is None or owner == self.owner or owner in self.shared_owners

    def manages(self, owner: str | None) -> bool:
        """Whether this caller may change or delete something `owner` owns."""
        return self.operator or owner == self.owner


def caller(owner: str, keys: Sequence[str], operator_keys: Sequence[str]) -> Caller:
    """The `Caller` for an authenticated `owner` under the configured keys."""
    operators = frozenset(owner_of_key(k) for k in operator_keys)
    return Caller(
        owner=owner,
        operator=not keys or owner in operators,
        shared_owners=operators | {ANONYMOUS},
    )
