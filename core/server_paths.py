"""Keeping the server's paths out of what a user reads.

Errors name what the user sent (an entry of their zip, a file of their dataset by its name in
it), never where the service stores it. Messages are worded that way at their sources;
`hide_storage_root` is the last line of defence where an error leaves the service (a job's
recorded error, a response's error body): it replaces every occurrence of the storage root,
as configured and as resolved, with `STORAGE_PLACEHOLDER`. Torch-free.
"""

from __future__ import annotations

import os
from pathlib import Path

from core.settings import get_settings

STORAGE_PLACEHOLDER = "<storage>"


def _spellings(root: Path) -> list[str]:
    """The ways a path of the storage root may be written, longest first."""
    forms = {str(root), os.path.abspath(root), os.path.realpath(root)}
    return sorted((f.rstrip(os.sep) for f in forms if f.rstrip(os.sep)), key=len, reverse=True)


def hide_storage_root(text: str, root: Path | None = None) -> str:
    """`text` with the storage root (`root`, default the settings' data dir) replaced by
    `STORAGE_PLACEHOLDER`; a root of "/" (which every absolute path starts with) is kept."""
    root = get_settings().data_dir if root is None else root
    for spelling in _spellings(root):
        if spelling in text:
            text = text.replace(spelling, STORAGE_PLACEHOLDER)
    return text
