"""The web page in headless Chromium against the real stack: translate, sample, train, errors,
the layout at 1280 and 360 px, and each view's own status line."""

import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import MAX_UPLOAD_BYTES, artifacts_dir
from tests.e2e.stack import png, upload_dataset, wait_job, zip_folder
from training.demo import build_demo

JOB_TIMEOUT_MS = 120_000
VIEWS = ("translate", "sample", "latent", "inspect", "train", "models", "jobs")
DIGESTS = """async () => Promise.all(
  [...document.querySelectorAll("#sample-gallery img")].map(async (img) => {
    const bytes = await (await fetch(img.src)).arrayBuffer();
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
    return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
  }),
)"""


def choose_image(page: Page, name: str, content: bytes, mime: str = "image/png") -> None:
    page.set_input_files(
        "#translate-file", files=[{"name": name, "mimeType": mime, "buffer": content}]
    )


def test_translate_an_image_and_see_the_output(page, stack):
    page.select_option("#translate-model", "tiny-p2p")
    choose_image(page, "photo.png", png(50, 37))
    expect(page.locator("#translate-input")).to_be_visible()
    page.click("#translate-form button[type=submit]")
    output = page.locator("#translate-output")
    expect(output).to_be_visible(timeout=JOB_TIMEOUT_MS)
    size = output.evaluate("img => img.decode().then(() => [img.naturalWidth, img.naturalHeight])")
    assert size == [50, 37]  # the translation keeps the input's size
    download = page.locator("#translate-download")
    expect(download).to_be_visible()
    assert re.fullmatch(r"translation-[0-9a-f]+\.png", download.get_attribute("download"))
    status = page.locator("#translate-status")
    expect(status).to_contain_text("Translation done")
    assert page.locator("#translate-mode").input_value() == "native"  # the default
    # smooth scaling: a photo is never drawn as blocks of pixels
    assert output.evaluate("img => getComputedStyle(img).imageRendering") == "auto"

    first = re.search(r"job ([0-9a-f]+)", status.inner_text()).group(1)
    page.select_option("#translate-mode", "resize")
    page.click("#translate-form button[type=submit]")
    done = re.compile(r"Translation done \(job (?!" + first + r")[0-9a-f]+\)")
    expect(status).to_contain_text(done, timeout=JOB_TIMEOUT_MS)
    job_id = re.search(r"job ([0-9a-f]+)", status.inner_text()).group(1)
    job = stack[1].get(f"/v1/jobs/{job_id}").json()  # the authorised client
    assert job["params"]["mode"] == "resize" and job["result"]["mode"] == "resize"

    # every result of the visit stays in a gallery, each with its download link
    history = page.locator("#translate-history figure")
    expect(history).to_have_count(2)
    names = [history.nth(k).locator("a.download").get_attribute("download") for k in range(2)]
    assert names == [f"translation-{job_id}.png", f"translation-{first}.png"]
    with page.expect_download() as info:
        history.nth(0).locator("a.download").click()
    assert info.value.suggested_filename == f"translation-{job_id}.png"
    assert info.value.path().read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page.screenshot(path=artifacts_dir() / "translate-results.png", full_page=True)

    # the status belongs to the Translate view: no other view shows it
    for view in VIEWS[1:]:
        page.click(f"#tab-{view}")
        expect(page.get_by_text("Translation done")).to_be_hidden()
    page.click("#tab-translate")
    expect(status).to_be_visible()


def test_sampling_twice_with_one_seed_gives_the_same_images(page):
    page.click("#tab-sample")
    page.select_option("#sample-model", "tiny-digits")
    expect(page.locator("#sample-class-row")).to_be_visible()  # a conditional model
    page.fill("#sample-count", "3")
    page.fill("#sample-seed", "7")
    page.click("#sample-form button[type=submit]")
    images = page.locator("#sample-gallery img")
    expect(images).to_have_count(3, timeout=JOB_TIMEOUT_MS)
    expect(page.locator("#sample-seed-used")).to_have_text("Seed: 7")
    downloads = page.locator("#sample-gallery a.download")
    expect(downloads).to_have_count(3)
    sample_id = re.search(r"job ([0-9a-f]+)", page.locator("#sample-status").inner_text()).group(1)
    assert [downloads.nth(k).get_attribute("download") for k in range(3)] == [
        f"sample-tiny-digits-v1-{sample_id}-{k}.png" for k in (1, 2, 3)
    ]
    first_urls = [images.nth(k).get_attribute("src") for k in range(3)]
    first = page.evaluate(DIGESTS)

    page.click("#sample-again")
    page.wait_for_function(
        "old => document.querySelector('#sample-gallery img').src !== old",
        arg=first_urls[0],
        timeout=JOB_TIMEOUT_MS,
    )
    expect(images).to_have_count(3)
    assert page.evaluate(DIGESTS) == first

    page.fill("#sample-seed", "8")
    page.click("#sample-form button[type=submit]")
    expect(page.locator("#sample-seed-used")).to_have_text("Seed: 8", timeout=JOB_TIMEOUT_MS)
    assert page.evaluate(DIGESTS) != first  # a different seed draws other images

    page.click("#sample-gallery button >> nth=1")  # Inspect sample 2
    expect(page.locator("#view-inspect")).to_be_visible()
    expect(page.locator("#inspect-source-text")).to_contain_text("Inspecting image 2 of job")
    expect(page.locator("#inspect-model")).to_have_value("tiny-digits")
    page.click("#inspect-form button[type=submit]")
    expect(page.locator("#inspect-map")).to_be_visible(timeout=JOB_TIMEOUT_MS)
    size = page.locator("#inspect-map").evaluate(
        "img => img.decode().then(() => [img.naturalWidth, img.naturalHeight])"
    )
    assert size == [32, 32]  # the sample's size


def test_train_watch_progress_and_cancel(page, stack, tmp_path):
    _url, client = stack
    data = build_demo("edges2photo", tmp_path / "edges", size=32, count=6)
    page.click("#tab-train")
    page.set_input_files(
        "#dataset-file",
        files=[{"name": "edges.zip", "mimeType": "application/zip", "buffer": zip_folder(data)}],
    )
    page.fill("#dataset-name", "edges")
    page.select_option("#dataset-kind", "paired")
    page.click("#dataset-form button[type=submit]")
    uploaded = page.locator("#dataset-status")
    expect(uploaded).to_contain_text("Dataset edges uploaded", timeout=30_000)
    expect(page.locator("#train-dataset option", has_text="edges")).to_be_attached()
    expect(page.locator("#train-family")).to_have_value("pix2pix")  # it follows the dataset

    page.select_option("#train-family", "pix2pix")
    page.fill("#train-steps", "100000")
    page.fill("#train-size", "32")
    page.fill("#train-batch", "2")
    page.click("#train-options summary")  # the options built from the family's schema
    page.fill("#train-opt-width", "4")
    page.fill("#train-opt-log_every", "1")
    page.fill("#train-opt-sample_every", "3")
    page.click("#train-form button[type=submit]")
    try:
        progress = page.locator("#train-progress")
        expect(progress).to_be_visible()
        page.wait_for_function(
            "() => document.querySelector('#train-progress').value > 0", timeout=JOB_TIMEOUT_MS
        )
        before = float(progress.evaluate("bar => bar.value"))
        page.wait_for_function(
            "v => document.querySelector('#train-progress').value > v",
            arg=before,
            timeout=JOB_TIMEOUT_MS,
        )  # the bar moves
        expect(page.locator("#train-preview")).to_be_visible(timeout=JOB_TIMEOUT_MS)
        expect(page.locator("#train-curves polyline").first).to_be_attached()
        expect(page.locator("#train-detail")).to_contain_text("G_")
        page.screenshot(path=artifacts_dir() / "train-running.png", full_page=True)

        job_id = re.search(r"Job (\w+)", page.locator("#train-detail").inner_text()).group(1)
        config = client.get(f"/v1/jobs/{job_id}").json()["params"]["config"]
        # the fields left empty keep their defaults: only what was set is sent
        assert config == {
            "steps": 100000,
            "image_size": 32,
            "batch_size": 2,
            "width": 4,
            "log_every": 1,
            "sample_every": 3,
        }
        page.click("#train-cancel")
        expect(page.locator("#train-error")).to_contain_text(
            f"Job {job_id} was cancelled", timeout=60_000
        )
        expect(page.locator("#train-cancel")).to_be_disabled()
        assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "cancelled"
        expect(page.locator("#error")).to_be_hidden()
    finally:  # a failure above must not leave a 100000-step run taking a core from the suite
        _cancel_training_runs(client)


def _cancel_training_runs(client) -> None:
    for job in client.get("/v1/jobs", params={"kind": "training"}).json()["jobs"]:
        if job["status"] in ("queued", "running"):
            client.post(f"/v1/jobs/{job['id']}/cancel")


def test_bad_uploads_show_their_error(page):
    page.select_option("#translate-model", "tiny-p2p")
    choose_image(page, "notes.png", b"these are notes, not pixels")
    page.click("#translate-form button[type=submit]")
    error = page.locator("#translate-error")
    expect(error).to_contain_text("not an image of an accepted type")
    expect(error).to_contain_text("unsupported_type")

    big = png(700, 700)  # random pixels do not compress
    assert len(big) > MAX_UPLOAD_BYTES
    choose_image(page, "big.png", big)
    page.click("#translate-form button[type=submit]")
    expect(error).to_contain_text(f"larger than the limit of {MAX_UPLOAD_BYTES} bytes")
    expect(page.locator("#translate-output")).to_be_hidden()
    expect(page.locator("#error")).to_be_hidden()  # the form's errors, not the page's
    page.click("#tab-sample")
    expect(error).to_be_hidden()  # nor another view's


def test_models_and_jobs_views(page, stack):
    _url, client = stack
    # eleven jobs at least: the Jobs view shows ten a page
    submitted = [
        client.post("/v1/samples", json={"model": "tiny-digits", "count": 1, "seed": k}).json()
        for k in range(11)
    ]
    newest = wait_job(client, submitted[-1]["id"])
    assert newest["status"] == "succeeded"
    page.click("#tab-models")
    rows = page.locator("#models-table tbody tr")
    expect(rows.filter(has_text="tiny-p2p")).to_have_count(1)
    expect(rows.filter(has_text="tiny-digits")).to_contain_text("3")  # its classes
    expect(rows.filter(has_text="tiny-p2p")).to_contain_text("v1")
    expect(rows.filter(has_text="tiny-p2p")).to_contain_text("tiny-p2p@1")  # its version
    page.screenshot(path=artifacts_dir() / "models.png", full_page=True)

    page.click("#tab-jobs")
    items = page.locator("#jobs-list li")
    expect(items).to_have_count(10)
    top = page.locator(f'#jobs-list li[data-job="{newest["id"]}"]')
    expect(top).to_be_visible()
    expect(top.locator(".job-title")).to_have_text("1 sample")

    def meta(term: str):
        return top.locator(f'.job-meta [data-term="{term}"] dd')

    expect(meta("kind")).to_have_text("Samples")
    expect(meta("model")).to_have_text("tiny-digits@1")
    expect(meta("owner")).to_have_text("you")
    for term, key in (("created", "created_at"), ("finished", "finished_at")):
        expect(meta(term).locator("time")).to_have_attribute("datetime", newest[key])
    expect(meta("duration")).to_have_text(re.compile(r"^\d+ ms$|^\d+(\.\d)? s$"))
    thumb = top.locator(".job-thumb img")
    expect(thumb).to_be_visible()
    assert thumb.evaluate("img => img.decode().then(() => img.naturalWidth)") == 32
    page.screenshot(path=artifacts_dir() / "jobs.png", full_page=True)

    expect(page.locator("#jobs-prev")).to_be_disabled()
    page.click("#jobs-next")
    expect(page.locator("#jobs-page")).to_contain_text("11–")
    expect(top).to_have_count(0)
    expect(page.locator("#jobs-prev")).to_be_enabled()
    page.click("#jobs-prev")
    expect(top).to_be_visible()
    expect(page.locator("#jobs-page")).to_have_text("1–10")


def test_tabs_work_from_the_keyboard(page):
    page.focus("#tab-translate")
    page.keyboard.press("ArrowRight")
    expect(page.locator("#tab-sample")).to_be_focused()
    expect(page.locator("#view-sample")).to_be_visible()
    expect(page.locator("#view-translate")).to_be_hidden()
    page.keyboard.press("End")
    expect(page.locator("#view-jobs")).to_be_visible()


def boxes(page, view: str) -> list[dict]:
    """The boxes of the view's first controls column and results column."""
    return [
        page.locator(f"#view-{view} .layout >> nth=0").locator(part).bounding_box()
        for part in (".controls", ".results")
    ]


def settle(page, view: str) -> None:
    """Wait for what a view loads after it opens (the Jobs view's thumbnails)."""
    if view == "jobs":
        expect(page.locator("#jobs-list .job-thumb.pending")).to_have_count(0)


def test_readable_at_360_px(page):
    page.set_viewport_size({"width": 360, "height": 740})
    for tab in VIEWS:
        page.click(f"#tab-{tab}")
        overflow = page.evaluate("() => document.documentElement.scrollWidth")
        assert overflow <= 360, f"the {tab} view is {overflow} px wide"
        if tab not in ("models", "jobs"):  # controls above results
            controls, results = boxes(page, tab)
            assert results["y"] >= controls["y"] + controls["height"], tab
        settle(page, tab)
        page.screenshot(path=artifacts_dir() / f"narrow-{tab}.png", full_page=True)


def test_wide_screens_put_controls_beside_results(page):
    page.set_viewport_size({"width": 1280, "height": 900})
    for tab in VIEWS:
        page.click(f"#tab-{tab}")
        overflow = page.evaluate("() => document.documentElement.scrollWidth")
        assert overflow <= 1280, f"the {tab} view is {overflow} px wide"
        main = page.locator("main").bounding_box()
        assert main["width"] >= 1200  # the page uses the screen, not a narrow column
        if tab not in ("models", "jobs"):
            controls, results = boxes(page, tab)
            assert results["x"] >= controls["x"] + controls["width"], tab
            assert abs(results["y"] - controls["y"]) < 2, tab
            assert results["width"] > controls["width"], tab
        settle(page, tab)
        page.screenshot(path=artifacts_dir() / f"wide-{tab}.png", full_page=True)


def test_light_and_dark_follow_the_system(page):
    page.set_viewport_size({"width": 1280, "height": 900})
    background = "() => getComputedStyle(document.body).backgroundColor"
    text = "() => getComputedStyle(document.body).color"
    page.emulate_media(color_scheme="light")
    light = page.evaluate(background), page.evaluate(text)
    page.emulate_media(color_scheme="dark")
    dark = page.evaluate(background), page.evaluate(text)
    assert light != dark
    assert luminance(dark[0]) < luminance(dark[1]) and luminance(light[0]) > luminance(light[1])
    for view in VIEWS:
        page.click(f"#tab-{view}")
        settle(page, view)
        page.screenshot(path=artifacts_dir() / f"dark-{view}.png", full_page=True)
    page.set_viewport_size({"width": 360, "height": 740})
    page.click("#tab-translate")
    page.screenshot(path=artifacts_dir() / "dark-narrow-translate.png", full_page=True)


def luminance(colour: str) -> float:
    red, green, blue = (int(v) for v in re.findall(r"\d+", colour)[:3])
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def test_inspect_a_translation_and_an_upload(page):
    page.select_option("#translate-model", "tiny-p2p")
    choose_image(page, "photo.png", png(40, 30, seed=2))
    page.click("#translate-form button[type=submit]")
    expect(page.locator("#translate-inspect")).to_be_visible(timeout=JOB_TIMEOUT_MS)
    page.click("#translate-inspect")
    expect(page.locator("#view-inspect")).to_be_visible()
    expect(page.locator("#inspect-source-text")).to_contain_text("with the image it translated")
    expect(page.locator("#inspect-model")).to_have_value("tiny-p2p")
    page.click("#inspect-form button[type=submit]")
    overlay = page.locator("#inspect-overlay")
    expect(overlay).to_be_visible(timeout=JOB_TIMEOUT_MS)
    expect(page.locator("#inspect-map")).to_be_visible()
    size = page.locator("#inspect-map").evaluate(
        "img => img.decode().then(() => [img.naturalWidth, img.naturalHeight])"
    )
    assert size == [40, 30]  # the map has the image's size
    expect(page.locator("#inspect-global")).to_contain_text("no global head")
    expect(page.locator("#inspect-box")).to_have_text(re.compile(r"^\d+, \d+, \d+, \d+$"))
    page.screenshot(path=artifacts_dir() / "inspect-translation.png", full_page=True)

    page.click("#inspect-source-clear")
    page.select_option("#inspect-model", "tiny-digits")
    expect(page.locator("#inspect-class-row")).to_be_visible()
    expect(page.locator("#inspect-input-row")).to_be_hidden()
    page.set_input_files(
        "#inspect-file", files=[{"name": "x.png", "mimeType": "image/png", "buffer": png(24, 24)}]
    )
    page.select_option("#inspect-class", "2")
    page.click("#inspect-form button[type=submit]")
    expect(page.locator("#inspect-global")).to_have_text(
        re.compile(r"^0\.\d{3}$|^1\.000$"), timeout=JOB_TIMEOUT_MS
    )
    expect(page.locator("#inspect-status")).to_contain_text("Inspection done")
    job_id = re.search(r"job ([0-9a-f]+)", page.locator("#inspect-status").inner_text()).group(1)
    with page.expect_download() as info:
        page.click("#inspect-download")
    assert info.value.suggested_filename == f"realness-map-tiny-digits-v1-{job_id}.png"


def test_first_minutes_demo_banner_and_example_inputs(page, stack, tmp_path):
    """A demo (background) run is announced with its progress, its model appears while it
    trains, and its held-out inputs are one click away in Translate."""
    _url, client = stack
    data = build_demo("labels2photo", tmp_path / "labels", size=32, count=30)
    dataset = upload_dataset(client, data, "labels", "paired")
    run = client.post(
        "/v1/training-runs",
        json={
            "family": "pix2pix",
            "dataset": dataset["id"],
            "name": "demo-labels",
            "background": True,
            "config": {
                "image_size": 32,
                "batch_size": 2,
                "width": 4,
                "steps": 100000,
                "checkpoint_every": 5,
                "log_every": 1,
            },
        },
    ).json()
    try:
        page.reload()
        banner = page.locator("#demo-banner")
        expect(banner).to_contain_text("demo-labels (pix2pix)", timeout=30_000)
        expect(banner).to_contain_text("usable now, improving", timeout=JOB_TIMEOUT_MS)
        expect(page.locator("#translate-model option[value=demo-labels]")).to_be_attached(
            timeout=30_000
        )
        page.select_option("#translate-model", "demo-labels")
        examples = page.locator("#translate-examples button")
        expect(examples).to_have_count(2, timeout=30_000)
        examples.nth(1).click()
        expect(page.locator("#translate-input")).to_be_visible()
        page.screenshot(path=artifacts_dir() / "demo-banner-examples.png", full_page=True)
        page.click("#translate-form button[type=submit]")
        output = page.locator("#translate-output")
        expect(output).to_be_visible(timeout=JOB_TIMEOUT_MS)
        size = output.evaluate(
            "img => img.decode().then(() => [img.naturalWidth, img.naturalHeight])"
        )
        assert size == [32, 32]  # the example is a held-out input at the dataset's size
    finally:
        client.post(f"/v1/jobs/{run['id']}/cancel")
