# One image for every Airflow service of docker-compose.yaml: exops and Airflow 3 installed
# from uv.lock exactly as `make install` does (no _PIP_ADDITIONAL_REQUIREMENTS at start-up).
FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

FROM python:3.11-slim-bookworm

# curl for the compose healthchecks; libpq-free: psycopg ships its own binary
RUN apt-get update \
 && apt-get install -y --no-install-recommends curl tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 50000 --gid 0 --home-dir /opt/airflow --create-home airflow

COPY --from=uv /uv /usr/local/bin/uv

WORKDIR /opt/exops
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/exops/.venv

# dependencies first (cached while only the code changes), then the project itself
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project --compile-bytecode --python /usr/local/bin/python3.11
COPY plugins ./plugins
COPY dags ./dags
COPY dbt_project ./dbt_project
COPY expectations ./expectations
COPY config ./config
RUN uv sync --frozen --no-dev --compile-bytecode --python /usr/local/bin/python3.11 \
 && mkdir -p /opt/airflow/logs /opt/airflow/exops /opt/airflow/secrets /opt/airflow/plugins \
 && chown -R 50000:0 /opt/airflow /opt/exops/dbt_project

ENV PATH=/opt/exops/.venv/bin:$PATH \
    AIRFLOW_HOME=/opt/airflow \
    PYTHONUNBUFFERED=1

USER 50000
WORKDIR /opt/airflow
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["airflow", "version"]
