"""The Latent view in headless Chromium against the real stack: draw samples, pick two and
watch the interpolation; project an image, watch it converge and interpolate from it; and the
Sample view's "keep the most real" filter."""

import io
import re
import zipfile

from PIL import Image, ImageDraw
from playwright.sync_api import Page, expect

from tests.browser.conftest import artifacts_dir
from tests.e2e.stack import wait_job

JOB_TIMEOUT_MS = 120_000
LOADED = "img => img.complete && img.naturalWidth > 0"


def job_id_in(page: Page, selector: str) -> str:
    return re.search(r"job ([0-9a-f]+)", page.locator(selector).inner_text()).group(1)


def open_latent_view(page: Page) -> None:
    page.click("#tab-latent")
    expect(page.locator("#view-latent")).to_be_visible()
    page.select_option("#latent-model", "tiny-digits")


def wait_loaded(page: Page, selector: str) -> None:
    page.wait_for_function(
        f"() => ({LOADED})(document.querySelector('{selector}'))", timeout=JOB_TIMEOUT_MS
    )


def digit_png() -> bytes:
    """A 32x32 white stroke on black: something a digits model might draw."""
    picture = Image.new("L", (32, 32), 0)
    ImageDraw.Draw(picture).ellipse((9, 6, 23, 26), outline=255, width=3)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def test_draw_pick_two_samples_and_watch_the_interpolation(page, stack):
    _url, client = stack
    open_latent_view(page)
    expect(page.locator("#latent-a-class")).to_be_visible()  # tiny-digits has 3 classes
    page.fill("#latent-draw-seed", "3")
    page.click("#latent-draw-form button[type=submit]")
    picks = page.locator("#latent-gallery button")
    expect(picks).to_have_count(8, timeout=JOB_TIMEOUT_MS)
    draw_id = job_id_in(page, "#latent-draw-status")
    expect(page.locator("#latent-draw-status")).to_contain_text("seed 3")

    interpolate = page.locator("#latent-interp-form button[type=submit]")
    error = page.locator("#latent-interp-error")
    interpolate.click()  # nothing chosen yet: the form says what is missing
    expect(error).to_contain_text("Choose the start (A)")

    picks.nth(1).click()
    expect(picks.nth(1)).to_have_class(re.compile(r"\bend-a\b"))
    expect(picks.nth(1)).to_have_accessible_name("Sample 2, the start (A)")
    expect(picks.nth(1).locator(".mark")).to_have_text("A")
    expect(page.locator("#latent-a-text")).to_contain_text(f"Sample 2 of draw {draw_id[:8]}")
    expect(page.locator("#latent-a-thumb")).to_be_visible()
    picks.nth(5).click()
    expect(picks.nth(5)).to_have_class(re.compile(r"\bend-b\b"))
    expect(picks.nth(5).locator(".mark")).to_have_text("B")
    expect(page.locator("#latent-b-text")).to_contain_text(f"Sample 6 of draw {draw_id[:8]}")

    page.fill("#latent-frames", "6")
    interpolate.click()
    animation = page.locator("#latent-animation")
    expect(animation).to_be_visible(timeout=JOB_TIMEOUT_MS)
    wait_loaded(page, "#latent-animation")
    chunks = animation.evaluate(
        "async img => new TextDecoder('latin1').decode(await (await fetch(img.src)).arrayBuffer())"
    )
    assert chunks.startswith("RIFF") and "ANIM" in chunks  # an animated WebP: it plays
    expect(page.locator("#latent-frame-count")).to_contain_text("6 frames from A to B (slerp")
    frames = page.locator("#latent-strip img")
    expect(frames).to_have_count(6)
    for k in range(6):
        assert frames.nth(k).evaluate(LOADED)
    expect(error).to_be_hidden()
    page.screenshot(path=artifacts_dir() / "latent-interpolation.png", full_page=True)

    job_id = job_id_in(page, "#latent-interp-status")
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["kind"] == "interpolation"
    params = job["params"]
    assert (params["start"]["job"], params["start"]["index"]) == (draw_id, 1)
    assert (params["end"]["job"], params["end"]["index"]) == (draw_id, 5)
    assert params["frames"] == 6 and params["path"] == "slerp"

    with page.expect_download() as info:
        page.click("#latent-gif")
    assert info.value.suggested_filename == f"interpolation-{job_id}.gif"
    assert info.value.path().read_bytes()[:4] == b"GIF8"
    with page.expect_download() as info:
        page.click("#latent-npy")
    assert info.value.suggested_filename == f"latents-{job_id}.npy"
    assert info.value.path().read_bytes()[:6] == b"\x93NUMPY"

    # a third click starts a new pair; a click on a marked sample unmarks it
    picks.nth(7).click()
    expect(picks.nth(7).locator(".mark")).to_have_text("A")
    expect(picks.nth(1).locator(".mark")).to_have_text("")
    expect(page.locator("#latent-b-text")).to_contain_text("Not chosen")
    picks.nth(7).click()
    expect(picks.nth(7)).not_to_have_class(re.compile(r"\bend-a\b"))
    expect(page.locator("#latent-a-text")).to_contain_text("Not chosen")

    # two seeds instead, the end of another class, along a straight line
    page.fill("#latent-a-seed", "11")
    page.fill("#latent-b-seed", "12")
    expect(page.locator("#latent-a-text")).to_contain_text("Seed 11")
    page.select_option("#latent-b-class", "2")
    page.select_option("#latent-path", "linear")
    page.fill("#latent-frames", "3")
    interpolate.click()
    expect(page.locator("#latent-frame-count")).to_contain_text(
        "3 frames from A to B (linear", timeout=JOB_TIMEOUT_MS
    )
    expect(frames).to_have_count(3)
    job = client.get(f"/v1/jobs/{job_id_in(page, '#latent-interp-status')}").json()
    assert job["params"]["start"]["seed"] == 11
    assert job["params"]["end"] == {**job["params"]["end"], "seed": 12, "class_label": 2}

    # the API's refusal shows beside the button (the input's own bound lifted, as a client
    # that bypasses the page would)
    page.eval_on_selector("#latent-a-seed", "input => input.removeAttribute('max')")
    page.fill("#latent-a-seed", str(2**40))
    interpolate.click()
    expect(error).to_be_visible()
    expect(error).to_contain_text("start")
    expect(error).to_contain_text(re.compile(r"\(\w+\)$"))
    expect(page.locator("#error")).to_be_hidden()


def test_project_an_image_and_interpolate_from_it(page, stack):
    _url, client = stack
    open_latent_view(page)
    page.set_input_files(
        "#latent-project-file",
        files=[{"name": "digit.png", "mimeType": "image/png", "buffer": digit_png()}],
    )
    expect(page.locator("#latent-project-target")).to_be_visible()
    detail = page.locator("#latent-project-detail")
    recon = page.locator("#latent-project-recon")

    # a long one: its reconstruction shows while it runs, and it can be cancelled
    page.fill("#latent-project-steps", "5000")
    page.click("#latent-project-form button[type=submit]")
    caption = page.locator("#latent-project-recon-caption")
    expect(caption).to_contain_text("Reconstruction at step", timeout=JOB_TIMEOUT_MS)
    wait_loaded(page, "#latent-project-recon")
    expect(detail).to_contain_text(re.compile(r"Step \d+ of 5000 — loss \d+\.\d{4} — PSNR"))
    expect(page.locator("#latent-project-progress")).not_to_have_js_property("value", 0)
    page.screenshot(path=artifacts_dir() / "latent-projection-running.png", full_page=True)
    page.click("#latent-project-cancel")
    error = page.locator("#latent-project-error")
    expect(error).to_contain_text("was cancelled", timeout=JOB_TIMEOUT_MS)
    expect(page.locator("#latent-project-cancel")).to_be_hidden()

    page.fill("#latent-project-steps", "20")
    page.click("#latent-project-form button[type=submit]")
    expect(error).to_be_hidden()
    status = page.locator("#latent-project-status")
    expect(status).to_contain_text("Projection done", timeout=JOB_TIMEOUT_MS)
    expect(detail).to_contain_text("Step 20 of 20")
    expect(caption).to_have_text("Reconstruction (20 steps)")
    wait_loaded(page, "#latent-project-recon")
    wait_loaded(page, "#latent-project-target")
    assert recon.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [32, 32]
    expect(page.locator("#latent-project-target-caption")).to_contain_text("as the model sees it")
    expect(page.locator("#latent-project-psnr")).to_have_text(re.compile(r"^\d+\.\d\d dB$"))
    expect(page.locator("#latent-project-ssim")).to_have_text(re.compile(r"^-?\d\.\d{3}$"))
    expect(page.locator("#latent-project-loss")).to_contain_text("→")
    projection_id = job_id_in(page, "#latent-project-status")
    result = client.get(f"/v1/jobs/{projection_id}").json()["result"]
    assert result["loss"] < result["start_loss"]  # it converges
    page.screenshot(path=artifacts_dir() / "latent-projection.png", full_page=True)

    page.click("#latent-use-a")
    expect(page.locator("#latent-a-text")).to_contain_text(f"Projection {projection_id[:8]}")
    expect(page.locator("#latent-a-thumb")).to_be_visible()
    page.fill("#latent-b-seed", "4")
    page.fill("#latent-frames", "4")
    page.click("#latent-interp-form button[type=submit]")
    expect(page.locator("#latent-frame-count")).to_contain_text(
        "4 frames from A to B", timeout=JOB_TIMEOUT_MS
    )
    wait_loaded(page, "#latent-animation")
    job = client.get(f"/v1/jobs/{job_id_in(page, '#latent-interp-status')}").json()
    assert (job["params"]["start"]["job"], job["params"]["start"]["index"]) == (projection_id, 0)
    assert job["params"]["start"]["class_label"] == result["class_label"]
    page.screenshot(path=artifacts_dir() / "latent-from-projection.png", full_page=True)

    page.set_viewport_size({"width": 360, "height": 740})
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 360, f"the latent view is {width} px wide"
    page.screenshot(path=artifacts_dir() / "narrow-latent.png", full_page=True)


def test_keep_the_most_real_in_the_sample_view(page, stack):
    _url, client = stack
    # a copy of tiny-digits without its discriminator, to see the option refused
    exported = client.get("/v1/models/tiny-digits/exports/safetensors").content
    stripped = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(exported)) as source, zipfile.ZipFile(stripped, "w") as out:
        for item in source.infolist():
            if not item.filename.endswith("discriminator.safetensors"):
                out.writestr(item, source.read(item))
    response = client.post(
        "/v1/models",
        files={"file": ("digits.zip", stripped.getvalue(), "application/zip")},
        data={"id": "digits-no-d"},
    )
    assert response.status_code == 202, response.text
    assert wait_job(client, response.json()["id"])["status"] == "succeeded"
    try:
        page.reload()
        page.click("#tab-sample")
        box = page.locator("#sample-filter")
        page.select_option("#sample-model", "digits-no-d")
        expect(box).to_be_disabled()
        expect(page.locator("#sample-filter-hint")).to_contain_text("has none")

        page.select_option("#sample-model", "tiny-digits")
        expect(box).to_be_enabled()
        box.check()
        page.fill("#sample-count", "4")
        page.fill("#sample-seed", "5")
        page.click("#sample-form button[type=submit]")
        expect(page.locator("#sample-gallery img")).to_have_count(4, timeout=JOB_TIMEOUT_MS)
        used = page.locator("#sample-filter-used")
        expect(used).to_contain_text("The 4 most real of 8 candidates drawn")
        job = client.get(f"/v1/jobs/{job_id_in(page, '#sample-status')}").json()
        assert job["params"]["filter"]["method"] == "top"
        assert job["params"]["filter"]["keep"] == 0.5
        assert job["result"]["filter"]["candidates"] == 8
        page.screenshot(path=artifacts_dir() / "sample-keep-most-real.png", full_page=True)

        box.uncheck()
        page.click("#sample-form button[type=submit]")
        expect(used).to_be_hidden(timeout=JOB_TIMEOUT_MS)
        job = client.get(f"/v1/jobs/{job_id_in(page, '#sample-status')}").json()
        assert job["params"].get("filter") is None
    finally:
        client.delete("/v1/models/digits-no-d")
