"""The documentation site read offline in the session's Chromium (`tests/browser/conftest.py`):
opened from file:// with every other request refused, the home page shows its pictures and the
search finds a page. (Here, not in tests/docs: one Playwright session serves every browser test.)
"""

from tests.docs.test_docs import site  # noqa: F401  (the site, built strictly)


def test_site_reads_and_searches_offline_from_the_file_system(browser, site):  # noqa: F811
    outside: list[str] = []

    def refuse_the_internet(route):
        if route.request.url.startswith(("file:", "data:", "blob:")):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.route("**/*", refuse_the_internet)
        page.goto((site / "index.html").as_uri())
        pictures = page.locator("article img")
        assert pictures.count() >= 3
        for k in range(pictures.count()):
            assert pictures.nth(k).evaluate("img => img.complete && img.naturalWidth > 0")
        page.keyboard.press("s")  # the search's shortcut
        page.locator("input.md-search__input").press_sequentially("sweeper", delay=50)
        page.locator(".md-search-result__item").first.wait_for(timeout=15000)
    finally:
        context.close()
    assert outside == []
