# rtdecode daemon image. CPU by default; a CUDA / TensorRT image via build arguments:
#
#   docker build -t rtdecode:cpu .
#   docker build -t rtdecode:cuda \
#       --build-arg BASE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04 \
#       --build-arg ORT_PACKAGE=onnxruntime-gpu .
#   docker run --rm --network host [--gpus all] \
#       -v /etc/rtdecode/config.toml:/etc/rtdecode/config.toml:ro rtdecode:cpu /etc/rtdecode/config.toml
#
# Every build step is a script in deploy/docker/ that CI also runs (deploy/docker/ci.sh), so
# what the image does is tested without Docker. Details: docs/deployment.md. Jetson:
# deploy/jetson/Dockerfile.jetson.
ARG BASE=python:3.11-slim
FROM ${BASE}

ARG ORT_PACKAGE=onnxruntime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/rtdecode/venv/bin:${PATH} \
    RTDECODE_MODELS=/opt/rtdecode/models \
    RTDECODE_TRT_CACHE=/var/cache/rtdecode/trt

COPY deploy/docker/system-deps.sh /tmp/system-deps.sh
RUN /tmp/system-deps.sh && rm /tmp/system-deps.sh

# the package (runtime only: no torch), pinned by constraints.txt
WORKDIR /opt/rtdecode/src
COPY pyproject.toml constraints.txt README.md ./
COPY rtdecode ./rtdecode
COPY deploy/docker/install.sh deploy/docker/check.sh ./deploy/docker/
RUN ./deploy/docker/install.sh --venv /opt/rtdecode/venv --ort-package "${ORT_PACKAGE}"

COPY models /opt/rtdecode/models
COPY deploy/configs /opt/rtdecode/deploy/configs

# run as a non-root user; the TensorRT engine cache is the only writable place it needs
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/rtdecode --create-home rtdecode \
    && mkdir -p /var/cache/rtdecode/trt && chown -R rtdecode:rtdecode /var/cache/rtdecode
USER rtdecode
WORKDIR /var/lib/rtdecode

# build-time self-test: doctor (CPU at build time) and every shipped config
RUN /opt/rtdecode/src/deploy/docker/check.sh --bin /opt/rtdecode/venv/bin \
        --configs /opt/rtdecode/deploy/configs

# `rtdecode check` reads the daemon's status message on its ZeroMQ endpoint (default
# tcp://127.0.0.1:5555, as in the shipped configs): healthy while the daemon says "running"
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["rtdecode", "check", "--timeout", "3"]

ENTRYPOINT ["rtdecode", "serve"]
CMD ["/opt/rtdecode/deploy/configs/cortex-sim.toml"]
