"""/docs (Swagger UI) and /redoc render the API's operations with no request leaving the machine."""

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import artifacts_dir


@pytest.mark.parametrize(
    ("path", "operation"),
    [
        ("/docs", "#operations-samples-createSample"),
        ("/redoc", 'h2:has-text("Create Translation")'),
    ],
)
def test_api_docs_render_offline(browser, stack, path, operation):
    url, _client = stack
    origin = urlsplit(url).netloc
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    elsewhere: list[str] = []

    def refuse_outside(route) -> None:
        target = urlsplit(route.request.url)
        if target.scheme in ("http", "https") and target.netloc != origin:
            elsewhere.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    context.route("**/*", refuse_outside)
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(str(error)))
    tab.goto(f"{url}{path}")
    expect(tab.locator(operation).first).to_be_visible(timeout=30_000)
    tab.screenshot(path=artifacts_dir() / f"api-docs{path.replace('/', '-')}.png")
    context.close()
    assert not elsewhere, f"{path} asked for {elsewhere}"
    assert not problems, f"script errors on {path}: {problems}"
