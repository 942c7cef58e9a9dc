"""Headless Chromium (Debian's `chromium`, driven by Playwright) on the page of a real stack.

Browsers cannot be downloaded here, so Playwright launches the system Chromium: `make browser`
(part of `make test`) installs it; `GANSERVE_CHROMIUM` points at another binary. A missing
browser fails these tests instead of skipping them. Screenshots go to `test-artifacts/browser/`
(or `$GANSERVE_TEST_ARTIFACTS/browser/`).
"""

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.e2e.stack import running_stack, save_tiny_models

REPO = Path(__file__).resolve().parents[2]
API_KEY = "browser-test-key"  # the first key: the operator, who owns the shared models
OTHER_KEY = "browser-other-key"  # a second user's key
MAX_UPLOAD_BYTES = 1_000_000
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str:
    """The Chromium binary: $GANSERVE_CHROMIUM, else `chromium` on the PATH."""
    path = os.environ.get("GANSERVE_CHROMIUM") or shutil.which("chromium")
    if not path:
        pytest.fail("Chromium is missing: run `make browser` (Debian's chromium package).")
    return path


def artifacts_dir() -> Path:
    """Where screenshots are kept after the run."""
    root = Path(os.environ.get("GANSERVE_TEST_ARTIFACTS", REPO / "test-artifacts"))
    folder = root / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Iterator[tuple[str, httpx.Client]]:
    """The real stack with two API keys (the first an operator's) and two tiny shared models
    with their discriminators: its URL and a client authorised with the operator's key."""
    data_dir = tmp_path_factory.mktemp("browser-stack")
    save_tiny_models(data_dir / "models", translator="tiny-p2p", sampler="tiny-digits")
    env = {
        "GANSERVE_API_KEYS": f"{API_KEY},{OTHER_KEY}",
        "GANSERVE_MAX_UPLOAD_BYTES": str(MAX_UPLOAD_BYTES),
    }
    with running_stack(data_dir, **env) as (client, _stack):
        client.headers["Authorization"] = f"Bearer {API_KEY}"
        yield str(client.base_url), client


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the session."""
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser, stack, request) -> Iterator[Page]:
    """The page at `/` with the API key entered; a screenshot of it is saved at the end."""
    url, _client = stack
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(str(error)))
    tab.goto(url)
    expect(tab.locator("#key-form")).to_be_visible()  # /v1 answered 401: the page asks
    tab.fill("#api-key", API_KEY)
    tab.click("#key-form button[type=submit]")
    expect(tab.locator("#translate-model option[value=tiny-p2p]")).to_be_attached()
    yield tab
    tab.screenshot(path=artifacts_dir() / f"{request.node.name}.png", full_page=True)
    context.close()
    assert not problems, f"script errors on the page: {problems}"
