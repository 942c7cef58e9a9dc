# The gateway: FastAPI under uvicorn. The base install of ganserve has no torch (pyproject.toml),
# so this is a slim image; it never loads a model.
#   docker build -f docker/gateway.Dockerfile -t ganserve-gateway .
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GANSERVE_DATA_DIR=/data

# A fixed non-root uid/gid (10001), the same as the worker image's, so both write the shared
# storage volume. /data is created owned by it: an empty named volume mounted there takes it over.
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
# The base dependencies only (no extras): no torch in the gateway.
RUN pip install --no-cache-dir . \
    && rm -rf build ./*.egg-info

USER 10001:10001
EXPOSE 8000

# No curl in the slim image: Python asks /healthz.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]

# ganserve.processes.gateway_command, listening on every interface of the container, in
# GANSERVE_GATEWAY_PROCESSES processes (service/uvicorn_server.py).
CMD ["python", "-m", "service.uvicorn_server", "--factory", "service.app:serve", "--host", "0.0.0.0", "--port", "8000", "--no-access-log"]
