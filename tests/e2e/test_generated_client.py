"""A client generated from the live `/openapi.json` by a standard generator works.

`openapi-python-client` (the dev extra) generates a Python package from the document a real stack
serves; the generator must report no warning or error for any operation (`--fail-on-warning`):
what it cannot read is left out of the client, so the document must say everything in a form it
reads (file uploads `format: binary`, optional form fields that are never null, typed bodies).
The generated package is imported and runs one translation end to end: `createTranslation`
uploads a PNG, `getJob` polls until the job ends, `getJobImage` downloads the result, which
Pillow decodes. An error comes back as the generated `Problem`.

The generator's configuration maps the image and zip media types to `application/octet-stream`
(`content_type_overrides`, the generator's documented way): it reads only JSON, text and
octet-stream bodies, while the document names the real media types (image/png, ...), which the
server sends and `test_openapi_conformance` checks.
"""

from __future__ import annotations

import importlib
import io
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from PIL import Image

from tests.e2e.stack import png, running_stack, save_tiny_models

KEY = "generated-client-key"
PACKAGE = "ganserve_generated_client"
GENERATOR_CONFIG = """\
content_type_overrides:
  image/png: application/octet-stream
  image/webp: application/octet-stream
  image/gif: application/octet-stream
  application/zip: application/octet-stream
post_hooks: []
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("generated-client")
    save_tiny_models(data_dir / "models", translator="tiny-p2p", sampler="tiny-unet")
    with running_stack(data_dir, GANSERVE_API_KEYS=KEY) as (http, _stack):
        yield str(http.base_url).rstrip("/")


@pytest.fixture(scope="module")
def generated(stack, tmp_path_factory):
    """The client package generated from the stack's `/openapi.json`, imported."""
    import httpx

    folder = tmp_path_factory.mktemp("generator")
    spec = folder / "openapi.json"
    spec.write_bytes(httpx.get(f"{stack}/openapi.json").content)
    config = folder / "config.yaml"
    config.write_text(GENERATOR_CONFIG)
    command = [
        sys.executable,
        "-m",
        "openapi_python_client",
        "generate",
        "--path",
        str(spec),
        "--output-path",
        str(folder / PACKAGE),
        "--meta",
        "none",
        "--config",
        str(config),
        "--fail-on-warning",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    assert "WARNING" not in report and "ERROR" not in report, report
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(folder))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def test_a_generated_client_translates_an_image(stack, generated):
    client_module = importlib.import_module(f"{PACKAGE}.client")
    types = importlib.import_module(f"{PACKAGE}.types")
    models = importlib.import_module(f"{PACKAGE}.models")
    create_translation = importlib.import_module(f"{PACKAGE}.api.translations.create_translation")
    get_job = importlib.import_module(f"{PACKAGE}.api.jobs.get_job")
    get_job_image = importlib.import_module(f"{PACKAGE}.api.jobs.get_job_image")

    with client_module.AuthenticatedClient(base_url=stack, token=KEY, timeout=60) as client:
        body = models.BodyCreateTranslation(
            image=types.File(
                payload=io.BytesIO(png(40, 24)), file_name="in.png", mime_type="image/png"
            ),
            model="tiny-p2p",
            seed=7,
        )
        job = create_translation.sync(client=client, body=body)
        assert isinstance(job, models.TranslationJob), job
        assert job.status.value in ("queued", "running")
        assert job.params.seed == 7 and (job.params.width, job.params.height) == (40, 24)

        deadline = time.monotonic() + 120
        while job.status.value not in ("succeeded", "failed", "cancelled"):
            assert time.monotonic() < deadline, "the translation did not end in 120 s"
            job = get_job.sync(job.id, client=client, wait=10)
            assert isinstance(job, models.TranslationJob), job
        assert job.status.value == "succeeded", job.error
        result = job.result
        assert isinstance(result, models.TranslationResult), result
        assert (result.width, result.height) == (40, 24) and result.count == 1

        image = get_job_image.sync(job.id, 0, client=client)
        assert isinstance(image, types.File), image
        picture = Image.open(image.payload)
        picture.load()
        assert (picture.format, picture.size) == ("PNG", (40, 24))

        missing = get_job.sync("0" * 32, client=client)
        assert isinstance(missing, models.Problem)
        assert (missing.status, missing.code) == (404, "job_not_found")
