# syntax=docker/dockerfile:1
#
# One image for every process of the Thanh Hoa smart-city KPI backend. Each container picks
# what it runs with its command (see docker-compose.yml):
#
#   python -m services.education | health | transport | culture   sector ingestion APIs
#   python -m services.aggregator                                  KPI aggregator
#   python -m services.kpi_api                                     KPI API and dashboard
#   python -m services.alerts                                      alerts (faust-streaming)
#   smartcity migrate | topics | keys ...                          operations CLI
#
# Configuration comes only from environment variables (KAFKA_*, DATABASE_*, LOG_*, CLOCK_* and
# <SERVICE>_HOST / <SERVICE>_PORT ...); tests/unit/test_compose.py checks that compose sets only
# names the code reads. A service listens on 127.0.0.1 by default: set <SERVICE>_HOST=0.0.0.0.
#
# No HEALTHCHECK here: the image does not know which service (and so which port) a container
# runs, so docker-compose.yml declares a /readyz healthcheck per service.

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: install the project and its pinned dependencies into a virtualenv -------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# README.md* : pyproject.toml names README.md as the long description; the glob keeps the
# build working while that file does not exist (setuptools only warns).
COPY pyproject.toml constraints.txt README.md* ./
COPY schemas ./schemas
COPY services ./services
COPY infra ./infra

# Runtime dependencies only (no dev extra), pinned by constraints.txt; a regular (not
# editable) install, so the source tree is not needed in the runtime stage.
RUN pip install -c constraints.txt . \
 && pip check

# --- runtime ------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}

LABEL org.opencontainers.image.title="smartcity-kpi" \
      org.opencontainers.image.description="Event-driven e-government KPI backend (Thanh Hoa)" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

# Non-root user; /app is its working directory and writable (faust-streaming keeps local
# table state under the working directory).
RUN groupadd --system --gid 10001 smartcity \
 && useradd --system --uid 10001 --gid smartcity --create-home --home-dir /home/smartcity \
        --shell /usr/sbin/nologin smartcity \
 && install -d -o smartcity -g smartcity /app

COPY --from=build /opt/venv /opt/venv

WORKDIR /app
USER 10001:10001

# kpi_api 8000; education 8101, health 8102, transport 8103, culture 8104;
# aggregator 8105 (health and metrics); alerts 8106 (defaults of the settings classes).
EXPOSE 8000 8101 8102 8103 8104 8105 8106 8107

CMD ["smartcity", "--help"]
