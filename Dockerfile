# photoseek server image: ONNX Runtime on the CPU, no torch.
#   docker compose up            (see docker-compose.yml and the README)
#   docker build -t photoseek .  (EXTRAS=... adds optional features, e.g. --build-arg EXTRAS=server,qdrant,faiss,vlm,ocr)
# GPU (NVIDIA, CUDA 12): Dockerfile.gpu. CI runs this file's pip steps in a fresh venv (.ci/dockerfile_install.py).
ARG PYTHON_VERSION=3.12

FROM python:${PYTHON_VERSION}-slim AS build
ARG EXTRAS=server,qdrant,faiss,vlm
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m venv "$VIRTUAL_ENV"
RUN pip install --quiet --upgrade pip
RUN pip install --quiet ".[$EXTRAS]"

FROM python:${PYTHON_VERSION}-slim AS runtime
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PHOTOSEEK_DB=/data/catalog.db \
    HF_HOME=/models \
    HF_HUB_DISABLE_TELEMETRY=1
# The token comes from PHOTOSEEK_TOKEN at run time (never baked in, never on the command line).
RUN useradd --system --uid 10001 --create-home --home-dir /home/photoseek photoseek \
    && mkdir -p /data /models /photos \
    && chown photoseek:photoseek /data /models
COPY --from=build /opt/venv /opt/venv
USER photoseek
WORKDIR /home/photoseek
# Catalog, thumbnails and vector files in /data; downloaded models in /models; photos mounted read-only at /photos.
VOLUME ["/data", "/models"]
EXPOSE 8000
# Long start period: the first start downloads the model (about 600 MB) into /models.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10m --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["photoseek", "serve", "--host", "0.0.0.0", "--port", "8000", "--root", "/photos"]
