"""A job's stored files as HTTP answers: streamed from the store, or a 307 to a presigned URL.

The gateway serves a stored object (`core.object_store`) the way it served files from disk: its
bytes streamed in chunks (never more than one held; an object of one chunk, such as a result
image, is read and answered at once), `Content-Length`, `Last-Modified`, an `ETag` (of the
object's key, size and last change), `Accept-Ranges: bytes`, and one byte range (`Range:
bytes=a-b`, `bytes=a-`, `bytes=-n`; 206 with `Content-Range`, 416 past the end; `If-Range` with
an older ETag or date sends the whole object; a Range that names several ranges, or none that
parses, is ignored and the whole object sent, as RFC 9110 allows).

Result links (`GANSERVE_RESULT_LINKS`): with `presigned` and an S3 store, the result routes
(`/v1/jobs/{id}/images/{k}`, `/latents.npy`, `/animation.{fmt}`) check the caller's key and the
object as always, then answer **307** with a presigned URL of the store, valid for
`GANSERVE_PRESIGNED_URL_SECONDS`, so the bytes travel from the store, not through the gateway.
The job JSON keeps listing the gateway's URLs: they stay valid for as long as the job (in
webhook bodies, idempotent replays, saved pages), every fetch is checked against the API key,
and a presigned URL is minted fresh at each fetch. HTTP clients follow a 307 and drop the
`Authorization` header when it leads to another host (httpx, requests, browsers' fetch), so the
API key never reaches the store. A local store always serves through the gateway.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from email.utils import formatdate, parsedate_to_datetime

from fastapi import Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse

from core.object_store import ObjectInfo, ObjectStore
from core.settings import Settings
from service.errors import ApiError

_SINGLE_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")

# The OpenAPI entry of the 307 the result routes may answer.
PRESIGNED_REDIRECT = {
    307: {
        "description": "With GANSERVE_RESULT_LINKS=presigned and an S3 store: the file is at "
        "a presigned URL of the store (`Location`), fetched without the API key.",
        "headers": {
            "Location": {
                "description": "The presigned URL, valid for GANSERVE_PRESIGNED_URL_SECONDS.",
                "schema": {"type": "string", "format": "uri"},
            }
        },
    }
}


def result_file(
    request: Request,
    objects: ObjectStore,
    settings: Settings,
    key: str,
    media_type: str,
    missing: ApiError,
    filename: str | None = None,
) -> Response:
    """A job's result file `key`: a 307 to a presigned URL of the store when the settings ask
    for one and the store gives one (S3), else streamed by the gateway (`stored_file`);
    `missing` is raised when there is no such object."""
    if settings.result_links == "presigned":
        url = objects.presigned_url(key, settings.presigned_url_seconds)
        if url is not None:
            if not objects.exists(key):
                raise missing
            return RedirectResponse(url, status_code=307)
    return stored_file(request, objects, key, media_type, missing, filename)


def stored_file(
    request: Request,
    objects: ObjectStore,
    key: str,
    media_type: str,
    missing: ApiError,
    filename: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """The object `key` streamed from the store (see the module docstring); `missing` is raised
    when there is no such object; `filename` makes it an attachment of that name. An object of
    one chunk is read with its size and date in one request to the store and answered at once
    (no hand-off to a thread per chunk)."""
    found = objects.fetch(key)
    if found is None:
        raise missing
    info, content = found
    answer = {
        "Accept-Ranges": "bytes",
        "ETag": _etag(info),
        "Last-Modified": formatdate(info.modified, usegmt=True),
        **(headers or {}),
    }
    if filename is not None:
        answer["Content-Disposition"] = f'attachment; filename="{filename}"'
    wanted = _wanted_range(request, info, answer["ETag"])
    if wanted == "unsatisfiable":
        raise ApiError(
            416,
            "range_not_satisfiable",
            f"The file has {info.size} bytes; the range asked for lies beyond them.",
            {"Content-Range": f"bytes */{info.size}"},
        )
    status, start, end = (200, 0, info.size - 1) if wanted is None else (206, *wanted)
    answer["Content-Length"] = str(end - start + 1)
    if wanted is not None:
        answer["Content-Range"] = f"bytes {start}-{end}/{info.size}"
    if isinstance(content, bytes):
        body = content if wanted is None else content[start : end + 1]
        return Response(body, status_code=status, media_type=media_type, headers=answer)
    chunks = content if wanted is None else _slice(content, start, end)
    return StreamingResponse(chunks, status_code=status, media_type=media_type, headers=answer)


def _etag(info: ObjectInfo) -> str:
    digest = hashlib.md5(f"{info.key}-{info.modified}-{info.size}".encode(), usedforsecurity=False)
    return f'"{digest.hexdigest()}"'


def _wanted_range(request: Request, info: ObjectInfo, etag: str) -> tuple[int, int] | str | None:
    """The one byte range (first, last) the request asks for; None for the whole object;
    "unsatisfiable" when it starts past the end."""
    header = request.headers.get("range")
    if header is None or info.size == 0 or not _if_range_holds(request, info, etag):
        return None
    found = _SINGLE_RANGE.match(header.strip())
    if found is None:
        return None
    first, last = found.groups()
    if not first and not last:
        return None
    if not first:  # the last `last` bytes
        count = int(last)
        return (max(0, info.size - count), info.size - 1) if count else "unsatisfiable"
    start = int(first)
    end = info.size - 1 if not last else min(int(last), info.size - 1)
    if last and int(last) < start:
        return None
    if start >= info.size:
        return "unsatisfiable"
    return start, end


def _if_range_holds(request: Request, info: ObjectInfo, etag: str) -> bool:
    """Whether an `If-Range` (an ETag or a date) still names this object; True without one."""
    condition = request.headers.get("if-range")
    if condition is None:
        return True
    if condition.startswith('"') or condition.startswith("W/"):
        return condition == etag
    try:
        return parsedate_to_datetime(condition).timestamp() >= int(info.modified)
    except (TypeError, ValueError):
        return False


def _slice(chunks: Iterator[bytes], start: int, end: int) -> Iterator[bytes]:
    """Bytes `start`..`end` (inclusive) of a stream of chunks."""
    offset = 0
    for chunk in chunks:
        low, high = max(start - offset, 0), min(end + 1 - offset, len(chunk))
        if low < high:
            yield chunk[low:high]
        offset += len(chunk)
        if offset > end:
            return
