"""Start the real stack for tests: embedded Redis, gateway and one worker per queue."""

import dataclasses
import io
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import torch
from PIL import Image

import models
from core.model_registry import ModelRef, ModelRegistry
from core.settings import Settings
from core.storage import Storage
from ganserve.embedded_redis import free_port
from ganserve.launcher import Stack, local_stack


@contextmanager
def running_stack(data_dir: Path, **env_overrides: str) -> Iterator[tuple[httpx.Client, Stack]]:
    """Yield an HTTP client on a fresh stack and the stack (to kill workers); stop it after."""
    settings = Settings(data_dir=data_dir, port=free_port(), redis_url=None)
    with local_stack(settings, env_overrides) as running:
        # idle connections dropped after 2 s, before uvicorn closes them (5 s): a request on a
        # connection the server is closing at that instant fails "Server disconnected"
        keepalive = httpx.Limits(keepalive_expiry=2)
        client = httpx.Client(base_url=running.url, timeout=60, limits=keepalive)
        wait_ready(client, running.stack)
        yield client, running.stack


def wait_ready(client: httpx.Client, stack: Stack, timeout: float = 90.0) -> None:
    """Wait until /readyz says Redis and a worker on each queue answer."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if (name := stack.failed()) is not None:
            raise RuntimeError(f"{name} exited during start-up")
        try:
            last = client.get("/readyz")
            if last.status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"stack not ready: {last.text if last is not None else 'no answer'}")


def wait_job(
    client: httpx.Client, job_id: str, timeout: float = 300.0, key: str | None = None
) -> dict:
    """Long-poll a job (of the API key `key`, when given) until it ends."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(
            f"/v1/jobs/{job_id}", params={"wait": 10}, headers=headers, timeout=30
        ).json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
    raise TimeoutError(f"job {job_id} did not end within {timeout} s")


def save_with_discriminator(folder, generator, discriminator) -> None:
    """A model folder as a training run leaves it: the generator and its discriminator."""
    models.save(generator, folder)
    name = models.architecture_of(discriminator).name
    models.save_discriminator(folder, discriminator, name, dataclasses.asdict(discriminator.config))


def save_tiny_models(models_dir: Path, *, translator: str, sampler: str) -> None:
    """Two tiny models with their discriminators: a pix2pix translator and a 3-class U-Net GAN.

    The weights are seeded so every run tests the same networks (an unseeded tiny U-Net GAN
    discriminator sometimes saturates its global score to exactly 1.0 in fp32).
    """
    torch.manual_seed(0)
    save_with_discriminator(
        models_dir / translator,
        models.create("pix2pix-generator", image_size=32, base_width=4),
        models.create("pix2pix-discriminator", base_width=4),
    )
    save_with_discriminator(
        models_dir / sampler,
        models.create("unetgan-generator", image_size=32, width=4, latent_dim=8, num_classes=3),
        models.create("unetgan-discriminator", image_size=32, width=4, num_classes=3),
    )


def png(width: int, height: int, seed: int = 0) -> bytes:
    """A PNG of random colours (it does not compress)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def upload_dataset(
    client: httpx.Client, folder: Path, name: str, kind: str, headers: dict | None = None
) -> dict:
    """Upload `folder` as a dataset zip through the API (with `headers`: an API key); its JSON
    (the upload must succeed)."""
    response = client.post(
        "/v1/datasets",
        data={"name": name, "kind": kind},
        files={"archive": (f"{name}.zip", zip_folder(folder), "application/zip")},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return response.json()


def zip_folder(folder: Path) -> bytes:
    """A zip of a folder's files (hidden ones left out), as a dataset upload."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                archive.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()


def version_folder(models_dir: Path, model_id: str, version: int | None = None) -> Path:
    """The local folder of a model's version (its newest when `version` is None) in the store of
    the data directory `models_dir.parent`."""
    registry = ModelRegistry.of(Storage(models_dir.parent))
    _, found = registry.resolve(ModelRef(model_id, version))
    return registry.local_folder(found)
