# syntax=docker/dockerfile:1
# prescaler's image: `docker build -t ghcr.io/prescaler/prescaler:0.1.0 .` (README, "Install").
# Both stages use the same pinned base, so the virtual environment built in the first runs unchanged in
# the second. To pin it by digest as well: `docker buildx imagetools inspect python:3.12.8-slim-bookworm`
# and build with --build-arg PYTHON_IMAGE=python:3.12.8-slim-bookworm@sha256:<digest>.
ARG PYTHON_IMAGE=python:3.12.8-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/prescaler
# Dependencies first, from the hashed lock (requirements/compile.sh writes it): a layer that changes
# only when the lock does. Every file pip fetches must match a hash in it, and all are wheels: nothing is
# compiled (checked for linux x86_64 and Python 3.12 with `pip install --dry-run --only-binary=:all:`).
COPY requirements/lock.txt /tmp/lock.txt
RUN /opt/prescaler/bin/pip install --require-hashes --only-binary=:all: -r /tmp/lock.txt
# Then prescaler itself, without dependencies and with the locked build backend.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY scaler ./scaler
COPY forecasting ./forecasting
RUN /opt/prescaler/bin/pip install --no-deps --no-build-isolation . \
 && /opt/prescaler/bin/pip uninstall --yes setuptools wheel

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="prescaler" \
      org.opencontainers.image.description="A KEDA external scaler that scales GPU inference services before demand arrives." \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --gid 65532 prescaler \
 && useradd --uid 65532 --gid 65532 --create-home --home-dir /home/prescaler --shell /usr/sbin/nologin prescaler
COPY --from=build /opt/prescaler /opt/prescaler
# HOME exists and belongs to the user; numba and matplotlib keep their caches under it (Kubernetes
# mounts an emptyDir there, the root filesystem being read-only).
ENV PATH=/opt/prescaler/bin:$PATH \
    HOME=/home/prescaler \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    NUMBA_CACHE_DIR=/home/prescaler/.cache/numba \
    MPLCONFIGDIR=/home/prescaler/.cache/matplotlib
USER 65532:65532
WORKDIR /home/prescaler
# Fails the build if the installed command cannot start.
RUN prescaler --version
EXPOSE 9090 8080
ENTRYPOINT ["prescaler"]
CMD ["serve"]
