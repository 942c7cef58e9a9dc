"""The route of the web page (`GET /`) and the folder of its static assets."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

STATIC_DIR = Path(__file__).resolve().parent / "static"

router = APIRouter()


@router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    """The web page."""
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html")
