# syntax=docker/dockerfile:1
# partnership-ledger: multi-stage; dependencies are installed before the project so that
# a change of code reuses the dependency layer.

FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/ledger
COPY pyproject.toml README.md ./
# Dependencies first (a stub package lets pip resolve them without the code).
RUN mkdir -p events projections service \
    && touch events/__init__.py projections/__init__.py service/__init__.py \
    && /opt/ledger/bin/pip install . \
    && /opt/ledger/bin/pip uninstall -y partnership-ledger
COPY events ./events
COPY projections ./projections
COPY service ./service
RUN /opt/ledger/bin/pip install --no-deps .

FROM python:3.11-slim-bookworm
ENV PATH=/opt/ledger/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    LEDGER_DATABASE=/data/ledger.db \
    LEDGER_HOST=0.0.0.0 \
    LEDGER_PORT=8000
RUN groupadd --system --gid 10001 ledger \
    && useradd --system --uid 10001 --gid ledger --home-dir /data ledger \
    && mkdir /data && chown 10001:10001 /data
COPY --from=build /opt/ledger /opt/ledger
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
STOPSIGNAL SIGTERM
# On the port the service listens on (LEDGER_PORT, as `docker run -e` may change it).
# Ready once the start has derived every answer: about a minute at 1,000,000 events
# (docs/benchmarks.md), during which failed probes do not count; a success ends it early.
HEALTHCHECK --interval=10s --timeout=3s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; url = 'http://127.0.0.1:%s/health/ready' % os.environ.get('LEDGER_PORT', '8000'); sys.exit(0 if urllib.request.urlopen(url, timeout=2).status == 200 else 1)"]
CMD ["ledger", "serve", "--host", "0.0.0.0"]
