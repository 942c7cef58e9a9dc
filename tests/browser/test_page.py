"""The web page in headless Chromium against the real stack: translate, sample, train, errors."""

import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import MAX_UPLOAD_BYTES, artifacts_dir
from tests.e2e.stack import png, upload_dataset, zip_folder
from training.demo import build_demo

JOB_TIMEOUT_MS = 120_000
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
    expect(page.locator("#status")).to_contain_text("Translation done")
    assert page.locator("#translate-mode").input_value() == "native"  # the default

    first = re.search(r"job ([0-9a-f]+)", page.locator("#status").inner_text()).group(1)
    page.select_option("#translate-mode", "resize")
    page.click("#translate-form button[type=submit]")
    done = re.compile(r"Translation done \(job (?!" + first + r")[0-9a-f]+\)")
    expect(page.locator("#status")).to_contain_text(done, timeout=JOB_TIMEOUT_MS)
    job_id = re.search(r"job ([0-9a-f]+)", page.locator("#status").inner_text()).group(1)
    job = stack[1].get(f"/v1/jobs/{job_id}").json()  # the authorised client
    assert job["params"]["mode"] == "resize" and job["result"]["mode"] == "resize"


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
    expect(page.locator("#status")).to_contain_text("Dataset edges uploaded", timeout=30_000)
    expect(page.locator("#train-dataset option", has_text="edges")).to_be_attached()

    page.select_option("#train-family", "pix2pix")
    page.fill("#train-steps", "100000")
    page.fill("#train-size", "32")
    page.fill("#train-batch", "2")
    page.fill("#train-extra", '{"width": 4, "log_every": 1, "sample_every": 3}')
    page.click("#train-form button[type=submit]")
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
    page.click("#train-cancel")
    expect(page.locator("#error")).to_contain_text(f"Job {job_id} was cancelled", timeout=60_000)
    expect(page.locator("#train-cancel")).to_be_disabled()
    assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "cancelled"


def test_bad_uploads_show_their_error(page):
    page.select_option("#translate-model", "tiny-p2p")
    choose_image(page, "notes.png", b"these are notes, not pixels")
    page.click("#translate-form button[type=submit]")
    error = page.locator("#error")
    expect(error).to_contain_text("not an image of an accepted type")
    expect(error).to_contain_text("unsupported_type")

    big = png(700, 700)  # random pixels do not compress
    assert len(big) > MAX_UPLOAD_BYTES
    choose_image(page, "big.png", big)
    page.click("#translate-form button[type=submit]")
    expect(error).to_contain_text(f"larger than the limit of {MAX_UPLOAD_BYTES} bytes")
    expect(page.locator("#translate-output")).to_be_hidden()


def test_models_and_jobs_views(page):
    page.click("#tab-models")
    rows = page.locator("#models-table tbody tr")
    expect(rows.filter(has_text="tiny-p2p")).to_have_count(1)
    expect(rows.filter(has_text="tiny-digits")).to_contain_text("3")  # its classes
    page.screenshot(path=artifacts_dir() / "models.png", full_page=True)
    page.click("#tab-jobs")
    expect(page.locator("#jobs-list li").first).to_be_visible()
    page.screenshot(path=artifacts_dir() / "jobs.png", full_page=True)


def test_tabs_work_from_the_keyboard(page):
    page.focus("#tab-translate")
    page.keyboard.press("ArrowRight")
    expect(page.locator("#tab-sample")).to_be_focused()
    expect(page.locator("#view-sample")).to_be_visible()
    expect(page.locator("#view-translate")).to_be_hidden()
    page.keyboard.press("End")
    expect(page.locator("#view-jobs")).to_be_visible()


def test_readable_at_360_px(page):
    page.set_viewport_size({"width": 360, "height": 740})
    for tab in ("translate", "sample", "latent", "inspect", "train", "models", "jobs"):
        page.click(f"#tab-{tab}")
        overflow = page.evaluate("() => document.documentElement.scrollWidth")
        assert overflow <= 360, f"the {tab} view is {overflow} px wide"
        page.screenshot(path=artifacts_dir() / f"narrow-{tab}.png", full_page=True)


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
    expect(page.locator("#status")).to_contain_text("Inspection done")


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
        client.delete(f"/v1/jobs/{run['id']}")
