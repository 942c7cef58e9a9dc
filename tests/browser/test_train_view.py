"""The Train view in headless Chromium against the real stack: the family follows the dataset's
kind, and the family's options are form fields built from its config schema (`GET
/v1/families`), with the advanced JSON as an escape hatch."""

from playwright.sync_api import expect

from tests.browser.conftest import artifacts_dir
from tests.e2e.stack import upload_dataset, wait_job
from training.demo import build_demo

BASIC = ("steps", "image_size", "batch_size")  # fields of their own, above the options


def test_family_follows_the_dataset_and_options_follow_the_schema(page, stack, tmp_path):
    _url, client = stack
    families = {f["name"]: f for f in client.get("/v1/families").json()["families"]}
    faces = build_demo("faces", tmp_path / "faces", size=32, count=4)
    images = upload_dataset(client, faces, "train-view-faces", "images")
    edges = build_demo("edges2photo", tmp_path / "edges", size=32, count=4)
    pairs = upload_dataset(client, edges, "train-view-edges", "paired")
    page.click("#tab-train")
    family = page.locator("#train-family")
    expect(family.locator("option")).to_have_count(len(families))  # named by the API

    page.select_option("#train-dataset", pairs["id"])
    expect(family).to_have_value("pix2pix")
    for name, row in families.items():
        offered = family.locator(f'option[value="{name}"]')
        if "paired" in row["dataset_kinds"]:
            expect(offered).to_be_enabled()
        else:
            expect(offered).to_be_disabled()
    expect(page.locator("#train-family-hint")).to_have_text(
        "A dataset of kind “paired” trains pix2pix."
    )
    expect(page.locator("#train-summary")).to_contain_text(
        f"train-view-edges (paired, {pairs['image_count']} images)"
    )
    summary = page.locator("#train-summary")  # what the family's capability flags say
    expect(summary).to_contain_text("realness maps of an image with the input it translates")
    expect(summary).to_contain_text("export their generator to ONNX")
    expect(summary).not_to_contain_text("latent space")  # pix2pix is not projectable

    schema = families["pix2pix"]["config_schema"]["properties"]
    expect(page.locator("#train-steps")).to_have_value(str(schema["steps"]["default"]))
    expect(page.locator("#train-size")).to_have_value(str(schema["image_size"]["default"]))
    expect(page.locator("#train-batch")).to_have_attribute(
        "placeholder", str(schema["batch_size"]["default"])
    )
    expect(page.locator("#train-batch")).to_have_value("")
    page.click("#train-options summary")
    fields = page.locator("#train-fields [data-field]")
    names = fields.evaluate_all("inputs => inputs.map((input) => input.dataset.field)")
    assert names == [name for name in schema if name not in BASIC]  # every field, in order
    direction = page.locator("#train-opt-direction")  # a choice: a select
    assert direction.evaluate("select => select.tagName") == "SELECT"
    expect(direction.locator("option")).to_have_text(schema["direction"]["enum"])
    expect(direction).to_have_value(schema["direction"]["default"])
    flag = page.locator("#train-opt-no_augment")  # a boolean: a checkbox
    expect(flag).to_have_attribute("type", "checkbox")
    expect(flag).not_to_be_checked()
    weight = page.locator("#train-opt-lambda_l1")  # a number: its bounds, its default
    expect(weight).to_have_attribute("type", "number")
    expect(weight).to_have_attribute("min", str(schema["lambda_l1"]["minimum"]))
    expect(weight).to_have_attribute("max", str(schema["lambda_l1"]["maximum"]))
    expect(weight).to_have_attribute("placeholder", "100")
    expect(weight).to_have_value("")  # empty: the default, not sent
    expect(page.locator("#train-opt-lambda_l1-hint")).to_contain_text("Weight of the L1 term")
    page.screenshot(path=artifacts_dir() / "train-options-pix2pix.png", full_page=True)

    # an images dataset: the first family that trains on it, and that family's fields
    page.select_option("#train-dataset", images["id"])
    expect(family).to_have_value("unetgan")
    expect(summary).to_contain_text(
        "take class labels (when trained on a labeled dataset); filter their samples by their "
        "discriminator; project an image into their latent space; export their generator to ONNX"
    )
    expect(page.locator('#train-family option[value="pix2pix"]')).to_be_disabled()
    expect(page.locator("#train-opt-cutmix")).to_be_checked()
    expect(page.locator("#train-opt-direction")).to_have_count(0)
    expect(page.locator("#train-opt-ema_decay")).to_have_attribute("max", "1")

    # the defaults as they are (a short run): accepted, and only what was set is sent
    page.fill("#train-steps", "2")
    page.click("#train-form button[type=submit]")
    status = page.locator("#train-status")
    expect(status).to_contain_text("Training run started")
    expect(page.locator("#train-error")).to_be_hidden()
    job_id = page.locator("#train-detail").inner_text().split()[1].rstrip(":")
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["params"]["family"] == "unetgan"
    assert job["params"]["config"] == {"steps": 2, "image_size": 32}
    client.post(f"/v1/jobs/{job_id}/cancel")
    wait_job(client, job_id)

    # pggan: its growth schedule sets the length and the batch sizes
    page.select_option("#train-family", "pggan")
    expect(page.locator("#train-steps-row")).to_be_hidden()
    expect(page.locator("#train-batch-row")).to_be_hidden()
    expect(page.locator("#train-schedule-hint")).to_contain_text(
        "schedule sets its steps and batch size"
    )
    expect(page.locator("#train-opt-phase_images")).to_be_visible()

    # a value out of bounds is refused before anything is sent, naming the field
    page.fill("#train-opt-ema_decay", "1")
    page.click("#train-form button[type=submit]")
    error = page.locator("#train-error")
    expect(error).to_contain_text("ema_decay: must be below 1")
    expect(page.locator("#train-opt-ema_decay")).to_be_focused()
    page.fill("#train-opt-ema_decay", "")
    page.fill("#train-opt-latent_dim", "0")
    page.click("#train-form button[type=submit]")
    expect(error).to_contain_text("latent_dim:")
    page.fill("#train-opt-latent_dim", "")

    # the advanced JSON: refused in words when it is not an object, merged over the fields
    page.click("#train-advanced summary")
    page.fill("#train-extra", "{not json")
    page.click("#train-form button[type=submit]")
    expect(error).to_contain_text("The settings JSON is not valid")
    page.fill("#train-extra", "[1]")
    page.click("#train-form button[type=submit]")
    expect(error).to_contain_text("must be an object")
    page.check("#train-opt-mirror")
    page.fill("#train-opt-phase_images", "100")
    page.fill("#train-extra", '{"phase_images": 8}')
    page.screenshot(path=artifacts_dir() / "train-options-pggan.png", full_page=True)
    page.click("#train-form button[type=submit]")
    expect(status).to_contain_text("Training run started")
    expect(error).to_be_hidden()
    expect(page.locator("#train-run-title")).to_contain_text("pggan on train-view-faces")
    job_id = page.locator("#train-detail").inner_text().split()[1].rstrip(":")
    try:
        job = client.get(f"/v1/jobs/{job_id}").json()
        assert job["params"]["family"] == "pggan"
        assert job["params"]["config"] == {"image_size": 32, "mirror": True, "phase_images": 8}
    finally:
        client.post(f"/v1/jobs/{job_id}/cancel")
        wait_job(client, job_id)
