"""The Models view in headless Chromium against the real stack: export, import, rename, delete,
and fine-tuning from a model in the Train view."""

import io
import re
import zipfile

from playwright.sync_api import Page, expect

from tests.browser.conftest import OTHER_KEY, artifacts_dir
from tests.e2e.stack import upload_dataset, wait_job
from training.demo import build_demo

JOB_TIMEOUT_MS = 120_000
KEY_STORAGE = "ganserve.apiKey"


def row(page: Page, model_id: str):
    return page.locator(f'#models-table tbody tr[data-model="{model_id}"]')


def button(page: Page, name: str):
    return page.get_by_role("button", name=name, exact=True)


def choose_model_file(page: Page, name: str, content: bytes) -> None:
    page.set_input_files(
        "#import-file", files=[{"name": name, "mimeType": "application/zip", "buffer": content}]
    )


def import_model(page: Page, name: str, content: bytes, **fields: str) -> None:
    """Fill the import form and submit it."""
    choose_model_file(page, name, content)
    for field, value in fields.items():
        page.fill(f"#import-{field}", value)
    page.click("#import-form button[type=submit]")


def use_key(page: Page, key: str) -> None:
    """Reload the page as the holder of another API key."""
    page.evaluate("([name, key]) => localStorage.setItem(name, key)", [KEY_STORAGE, key])
    page.reload()
    expect(page.locator("#translate-model option[value=tiny-p2p]")).to_be_attached()


def test_export_a_zip_import_it_rename_and_delete(page, stack, tmp_path):
    _url, client = stack
    page.click("#tab-models")
    original = row(page, "tiny-p2p")
    expect(original).to_contain_text("shared")
    with page.expect_download() as info:
        button(page, "Export tiny-p2p as zip (safetensors)").click()
    download = info.value
    assert download.suggested_filename == "tiny-p2p.zip"
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    with zipfile.ZipFile(path) as archive:
        names = {name.rsplit("/", 1)[-1] for name in archive.namelist()}
    assert {"config.json", "model.safetensors", "discriminator.safetensors"} <= names
    expect(page.locator("#models-status")).to_contain_text("Exported tiny-p2p as zip")

    page.set_input_files("#import-file", path)
    page.fill("#import-id", "p2p-copy")
    page.fill("#import-name", "Copy of p2p")
    page.fill("#import-description", "Exported and imported again by the browser test")
    page.click("#import-form button[type=submit]")
    status = page.locator("#import-status")
    expect(status).to_contain_text("Model p2p-copy imported", timeout=JOB_TIMEOUT_MS)
    expect(page.locator("#import-error")).to_be_hidden()
    copy = row(page, "p2p-copy")
    expect(copy).to_contain_text("Copy of p2p")
    expect(copy.locator(".badge.version")).to_have_text("v1")  # its version, and its ref
    expect(copy).to_contain_text("ref: p2p-copy@1")
    expect(copy).to_contain_text("Exported and imported again")
    # every model select on the page knows it, the inspect one too (it has its discriminator)
    expect(page.locator("#translate-model option[value=p2p-copy]")).to_have_text(
        "Copy of p2p [p2p-copy] (pix2pix)"
    )
    expect(page.locator("#inspect-model option[value=p2p-copy]")).to_be_attached()
    expect(page.locator("#import-id")).to_have_value("")  # the form is cleared for the next one

    button(page, "Rename or describe p2p-copy").click()
    dialog = page.locator("#edit-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#edit-name")).to_be_focused()
    page.fill("#edit-name", "Renamed copy")
    page.fill("#edit-description", "A new description")
    page.click("#edit-form button[type=submit]")
    expect(dialog).to_be_hidden()
    expect(copy).to_contain_text("Renamed copy")
    expect(copy).to_contain_text("A new description")
    expect(page.locator("#translate-model option[value=p2p-copy]")).to_contain_text("Renamed copy")
    assert client.get("/v1/models/p2p-copy").json()["name"] == "Renamed copy"
    page.screenshot(path="/tmp/models_view.png", full_page=True)
    page.screenshot(path=artifacts_dir() / "models-view.png", full_page=True)

    messages: list[str] = []

    def dismiss(dialog):
        messages.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    button(page, "Delete p2p-copy").click()
    assert messages and "Delete the model p2p-copy?" in messages[0]
    expect(copy).to_have_count(1)  # "Cancel" keeps it

    page.once("dialog", lambda dialog: dialog.accept())
    button(page, "Delete p2p-copy").click()
    expect(page.locator("#models-status")).to_contain_text("Model p2p-copy deleted")
    expect(copy).to_have_count(0)
    expect(page.locator("#translate-model option[value=p2p-copy]")).to_have_count(0)
    assert client.get("/v1/models/p2p-copy").status_code == 404


def test_onnx_export_downloads_the_file(page):
    page.click("#tab-models")
    with page.expect_download(timeout=JOB_TIMEOUT_MS) as info:
        button(page, "Export tiny-digits as ONNX").click()
    download = info.value
    assert download.suggested_filename == "tiny-digits.onnx"
    size = len(download.path().read_bytes())
    assert size > 1000
    expect(page.locator("#models-status")).to_contain_text(
        f"Exported tiny-digits as ONNX: tiny-digits.onnx ({size} bytes)"
    )
    expect(page.locator("#models-error")).to_be_hidden()


def test_import_errors_are_shown_next_to_the_form(page, stack):
    _url, client = stack
    page.click("#tab-models")
    error = page.locator("#import-error")

    import_model(page, "notes.zip", b"these are notes, not a model")
    expect(error).to_contain_text("not a model ganserve can import")
    expect(error).to_contain_text("(not_a_model)")

    exported = client.get("/v1/models/tiny-p2p/exports/safetensors").content
    import_model(page, "tiny-p2p.zip", exported, id="tiny-p2p")
    expect(error).to_contain_text("The model id 'tiny-p2p' is taken by another owner")
    expect(error).to_contain_text("(model_exists)")

    # a zip whose card is right but whose weights do not load: the import job fails
    broken = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(exported)) as source, zipfile.ZipFile(broken, "w") as out:
        for item in source.infolist():
            data = source.read(item)
            if item.filename.endswith("model.safetensors"):
                data = b"\0" * 64
            out.writestr(item, data)
    import_model(page, "broken.zip", broken.getvalue(), id="broken-copy")
    expect(error).to_contain_text("(not_a_model)", timeout=JOB_TIMEOUT_MS)
    expect(error).to_contain_text("not a model ganserve can load")
    expect(page.locator("#import-status")).to_have_text("")
    expect(row(page, "broken-copy")).to_have_count(0)
    expect(page.locator("#error")).to_be_hidden()  # the errors are the form's, not the page's


def test_only_owners_delete_and_shared_models_say_why_not(page, stack):
    _url, client = stack
    use_key(page, OTHER_KEY)  # not an operator: the tiny models are shared with it
    page.click("#tab-models")
    shared = row(page, "tiny-p2p")
    expect(shared).to_contain_text("shared")
    messages: list[str] = []

    def accept(dialog):
        messages.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    button(page, "Delete tiny-p2p").click()
    assert "shared model" in messages[0] and "only an operator" in messages[0]
    error = page.locator("#models-error")
    expect(error).to_contain_text("Only the owner of the model 'tiny-p2p' or an operator")
    expect(error).to_contain_text("(not_owner)")
    expect(shared).to_have_count(1)

    import_model(
        page,
        "mine.zip",
        client.get("/v1/models/tiny-digits/exports/safetensors").content,
        id="mine",
    )
    expect(page.locator("#import-status")).to_contain_text(
        "Model mine imported", timeout=JOB_TIMEOUT_MS
    )
    mine = row(page, "mine")
    expect(mine).to_contain_text("yours")
    expect(page.locator("#sample-model option[value=mine]")).to_be_attached()
    page.once("dialog", lambda dialog: dialog.accept())
    button(page, "Delete mine").click()
    expect(page.locator("#models-status")).to_contain_text("Model mine deleted")
    expect(mine).to_have_count(0)
    expect(error).to_be_hidden()


def test_fine_tune_from_a_model_in_the_train_view(page, stack, tmp_path):
    _url, client = stack
    data = build_demo("labels2photo", tmp_path / "labels", size=32, count=4)
    dataset = upload_dataset(client, data, "fine-tune-labels", "paired")
    faces = build_demo("faces", tmp_path / "faces", size=32, count=4)
    images = upload_dataset(client, faces, "fine-tune-faces", "images")
    page.click("#tab-models")
    button(page, "Fine-tune from this model (tiny-p2p)").click()
    expect(page.locator("#view-train")).to_be_visible()
    expect(page.locator("#train-family")).to_have_value("pix2pix")
    init = page.locator("#train-init")
    expect(init).to_have_value("tiny-p2p")
    expect(init).to_be_focused()
    expect(page.locator("#train-size")).to_have_value("32")  # the model's size, fixed
    expect(page.locator("#train-size")).to_have_attribute("readonly", "")
    expect(page.locator("#train-size-hint")).to_be_visible()

    def offered() -> list[str]:
        return init.evaluate("s => [...s.options].map((o) => o.value)")

    families = {m["id"]: m["family"] for m in client.get("/v1/models").json()["models"]}
    values = offered()
    assert values[0] == "" and "tiny-p2p" in values and "tiny-digits" not in values
    assert all(families[v] == "pix2pix" for v in values[1:])
    # an images dataset: the family follows it (pix2pix trains on pairs only)
    page.select_option("#train-dataset", images["id"])
    expect(page.locator("#train-family")).to_have_value("unetgan")
    expect(page.locator('#train-family option[value="pix2pix"]')).to_be_disabled()
    assert "tiny-digits" in offered() and "tiny-p2p" not in offered()
    expect(init).to_have_value("")  # a fresh run: the size is the user's again
    expect(page.locator("#train-size")).not_to_have_attribute("readonly", "")
    page.select_option("#train-family", "pggan")
    expect(init).to_be_disabled()
    expect(init.locator("option")).to_have_text(["None: a pggan run always starts fresh"])
    page.select_option("#train-dataset", dataset["id"])  # a paired one again
    expect(page.locator("#train-family")).to_have_value("pix2pix")
    page.select_option("#train-init", "tiny-p2p")
    expect(page.locator("#train-size")).to_have_value("32")

    page.fill("#train-steps", "2")
    page.fill("#train-batch", "2")
    page.click("#train-options summary")
    page.fill("#train-opt-width", "8")  # the model's width is 4
    page.click("#train-form button[type=submit]")
    error = page.locator("#train-error")
    expect(error).to_contain_text("The run cannot start from the model 'tiny-p2p'")
    expect(error).to_contain_text("width (8 here, 4 in the model)")
    expect(error).to_contain_text("(init_mismatch)")
    expect(page.locator("#train-progress-box")).to_be_hidden()
    page.screenshot(path="/tmp/train_view.png", full_page=True)
    page.screenshot(path=artifacts_dir() / "train-init-from.png", full_page=True)

    page.fill("#train-opt-width", "")  # the model's width, then
    page.click("#train-form button[type=submit]")
    status = page.locator("#train-status")
    expect(status).to_contain_text("from tiny-p2p")
    expect(error).to_be_hidden()
    expect(page.locator("#train-detail")).to_contain_text("Job ")
    job_id = re.search(r"Job (\w+)", page.locator("#train-detail").inner_text()).group(1)
    try:
        # the run starts from the version pinned when it was submitted
        assert client.get(f"/v1/jobs/{job_id}").json()["params"]["init_from"] == "tiny-p2p@1"
        expect(status).to_contain_text("Training finished: model", timeout=JOB_TIMEOUT_MS)
        job = wait_job(client, job_id)
        model = job["result"]["model"]
        expect(page.locator(f'#train-init option[value="{model}"]')).to_be_attached()
    finally:
        client.post(f"/v1/jobs/{job_id}/cancel")
        job = wait_job(client, job_id)
        if job["status"] == "succeeded":
            assert client.delete(f"/v1/models/{job['result']['model']}").status_code == 204
