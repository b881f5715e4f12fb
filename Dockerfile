# One image for the engine's three processes, chosen by the command (docs/deploy.md):
#   payments serve --host 0.0.0.0 --port 8000   (web; the default)
#   payments worker --processes 2 --threads 8   (worker)
#   payments scheduler                          (scheduler; run exactly one)
#
# The build stage runs deploy/install.sh, the step the test suite performs in a fresh virtualenv
# (tests/e2e/test_production_install.py): the wheel under the lock file, no extras, so the local stack stays out.  The
# final stage holds that virtualenv only: no compilers, no build tools, no source tree.

# The Python the lock file is resolved for (pyproject.toml: requires-python); both stages use the same base.
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY deploy/install.sh ./deploy/install.sh
COPY engine ./engine
COPY actors ./actors
COPY pipelines ./pipelines
COPY cli ./cli
COPY config ./config
COPY sandbox ./sandbox
# The one production install (deploy/install.sh): the wheel under the lock file, no extras.
RUN PYTHON=python sh deploy/install.sh /opt/payments

FROM python:3.11-slim-bookworm AS runtime
LABEL org.opencontainers.image.title="payments-engine" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/payments/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PAYMENTS_HTTP_HOST=0.0.0.0 \
    PAYMENTS_HTTP_PORT=8000 \
    PAYMENTS_DATA_DIR=/tmp/payments \
    PAYMENTS_LOG_FORMAT=json
RUN groupadd --system --gid 10001 payments \
    && useradd --system --uid 10001 --gid payments --no-create-home --shell /usr/sbin/nologin payments
COPY --from=build /opt/payments /opt/payments
WORKDIR /tmp
USER 10001:10001
EXPOSE 8000
# The web process answers /health/live; a worker or scheduler container sets HEALTHCHECK_URL to its own probe
# (a worker: http://127.0.0.1:9191/metrics).  ECS uses the task definition's health check instead of this one.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen(os.environ.get('HEALTHCHECK_URL', 'http://127.0.0.1:8000/health/live'), timeout=4)"]
CMD ["payments", "serve"]
