"""The README stays short and shows what ganserve makes; the documentation site builds strictly
(a broken link or anchor fails), works offline, and its settings page lists every setting."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SCREEN = 40  # lines of the README's first screen

# A picture in Markdown or HTML: ![alt](path) or <img src="path">
PICTURE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)|<img\s[^>]*src=\"([^\"]+)\"")
LINK = re.compile(r"\]\(([^)\s]+)\)")
# An asset the browser would fetch by itself (scripts, styles, images, frames), by URL.
ASSET = re.compile(
    r"<(?:script|img|iframe|source)\s[^>]*src=\"([^\"]+)\"|<link\s[^>]*href=\"([^\"]+)\""
)


def env_names() -> list[str]:
    prefix = Settings.model_config["env_prefix"]
    return [f"{prefix}{name}".upper() for name in Settings.model_fields]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site, built as `make docs` builds it, strictly, into a temporary folder."""
    out = tmp_path_factory.mktemp("site")
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", "mkdocs.yml", "-d", str(out)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    assert "WARNING" not in build.stderr, build.stderr
    return out


def test_readme_fits_on_two_screens_with_a_picture_on_the_first():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines (at most 150)"
    first_screen = "\n".join(lines[:SCREEN])
    pictures = [a or b for a, b in PICTURE.findall(first_screen)]
    assert pictures, f"no picture in the README's first {SCREEN} lines"
    for picture in pictures:
        assert (ROOT / picture).is_file(), f"the README shows {picture}, which is not there"


def test_readme_keeps_the_two_commands_near_the_top():
    top = README.read_text(encoding="utf-8").splitlines()[:SCREEN]
    assert any(line.startswith("make run    # ") for line in top)
    assert any(line.startswith("make test   # ") for line in top)


def test_readme_links_point_at_files_that_exist():
    text = README.read_text(encoding="utf-8")
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path = target.split("#", 1)[0]
        assert (ROOT / path).exists(), f"the README links to {target}, which is not there"


def test_settings_page_lists_every_setting(site):
    page = (site / "settings.html").read_text(encoding="utf-8")
    for name in env_names():
        assert f'id="{name}"' in page, f"{name} is missing from the settings page"
        assert f"<code>{name}</code>" in page


def test_settings_are_not_written_by_hand():
    """The settings table is generated from core/settings.py: no page (nor the README) holds a
    hand-written copy of its rows."""
    row = re.compile(r"^\|\s*`GANSERVE_[A-Z_]+`", re.MULTILINE)
    for source in [README, *sorted((ROOT / "docs").rglob("*.md"))]:
        text = source.read_text(encoding="utf-8")
        assert not row.search(text), f"{source.relative_to(ROOT)} holds a settings table by hand"


def test_site_loads_nothing_from_the_internet(site):
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > 10
    for page in pages:
        html = page.read_text(encoding="utf-8")
        for a, b in ASSET.findall(html):
            url = a or b
            assert not re.match(r"(https?:)?//", url), f"{page.relative_to(site)} loads {url}"
    # the offline plugin inlines the search index, so search works from file://
    assert (site / "search" / "search_index.js").is_file()


def test_site_has_a_page_for_each_part(site):
    for page in [
        "index.html",
        "api/index.html",
        "api/models.html",
        "api/jobs.html",
        "api/limits.html",
        "client.html",
        "cli.html",
        "training.html",
        "evaluation.html",
        "model-format.html",
        "deployment.html",
        "operations.html",
        "settings.html",
        "performance.html",
        "demo-models.html",
        "design/index.html",
    ]:
        assert (site / page).is_file(), page
