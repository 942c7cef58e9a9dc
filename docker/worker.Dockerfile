# The workers: one image for the inference and the training worker; the command picks the queue
# (compose.yaml overrides CMD with ganserve.processes.worker_command("infer" | "train")).
#   docker build -f docker/worker.Dockerfile -t ganserve-worker .
#   docker build -f docker/worker.Dockerfile --build-arg PYTORCH_IMAGE=pytorch/pytorch:<tag> .
# The base image must carry torch 2.13.0 (the `worker` extra pins torch==2.13.0) with a CUDA
# runtime the host's NVIDIA driver supports, and Python 3.11 (requires-python); pick another
# 2.13.0 tag of https://hub.docker.com/r/pytorch/pytorch/tags for another CUDA version.
ARG PYTORCH_IMAGE=pytorch/pytorch:2.13.0-cuda12.8-cudnn9-runtime
FROM ${PYTORCH_IMAGE}

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GANSERVE_DATA_DIR=/data

# tini -g: `docker stop` signals PID 1 only; tini forwards SIGTERM to the whole process group, so
# the Celery pool child running a training run gets it too, checkpoints the run and requeues it
# (workers/shutdown.py) within the compose stop_grace_period.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/*

# The same non-root uid/gid as the gateway image (shared storage volume).
RUN groupadd --system --gid 10001 ganserve \
    && useradd --system --uid 10001 --gid ganserve --home-dir /app --shell /usr/sbin/nologin ganserve \
    && mkdir -p /data \
    && chown ganserve:ganserve /data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY core ./core
COPY ganserve ./ganserve
COPY service ./service
COPY models ./models
COPY training ./training
COPY workers ./workers
# Install the project with the `worker` extra while keeping the base image's CUDA build of torch:
# a constraint file pins torch to exactly the installed version (e.g. 2.13.0+cu128), which
# satisfies the extra's torch==2.13.0, so pip leaves it alone instead of fetching the PyPI wheel
# (and fails loudly if the base image carries another release). The other extras (numpy,
# safetensors, torchmetrics, ...) are installed normally.
RUN python -c "import torch; print(f'torch=={torch.__version__}')" > /tmp/keep-torch.txt \
    && pip install --no-cache-dir --constraint /tmp/keep-torch.txt ".[worker]" \
    && python -c "import torch, models; print('torch', torch.__version__, 'cuda', torch.version.cuda)" \
    && rm -rf /tmp/keep-torch.txt build ./*.egg-info

USER 10001:10001

ENTRYPOINT ["tini", "-g", "--"]
# ganserve.processes.worker_command("infer"); compose.yaml runs the "train" one too.
CMD ["python", "-m", "celery", "-A", "workers.celery_app", "--quiet", "worker", "--queues", "infer", "--hostname", "infer@%h", "--loglevel", "INFO"]
