"""Who owns what: the owner id recorded for an API key, and the owner without keys. Torch-free.

The gateway authenticates a request to one of these (`service.security`); the launcher records
the demo models it installs under the operator's (`ganserve.demo_models`).
"""

from __future__ import annotations

import hashlib

ANONYMOUS = "anonymous"  # the owner of everything when no API keys are configured


def owner_of_key(key: str) -> str:
    """The stable owner id of an API key (a digest; the key cannot be recovered from it)."""
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:16]
