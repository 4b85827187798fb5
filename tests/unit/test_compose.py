"""docker-compose.yaml, Dockerfile and .env.example agree with each other and the README.

Docker cannot run in CI, so these check the production shape statically: every service the
README names exists, every variable the compose file uses is in .env.example, every Airflow
service shares one JWT secret and Fernet key, healthchecks back every `service_healthy`, one
Celery worker per stage holds only its own warehouse role's credentials, and the admin's
URL reaches airflow-init alone.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from exops.dag_defaults import STAGE_QUEUES
from exops.roles import STAGE_ROLES
from exops.settings import PROJECT_ROOT
from exops.warehouse import STAGE_URL_ENVS

# one Celery worker per stage (loader, transformer, publisher)
WORKERS = {f"airflow-worker-{stage}": stage for stage in STAGE_QUEUES}
AIRFLOW_SERVICES = {
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-init",
    *WORKERS,
}
OTHER_SERVICES = {"airflow-db", "redis", "warehouse", "mailpit"}
# Superset has its own image (bi/Dockerfile): it pins pandas and SQLAlchemy that Airflow cannot
BI_SERVICE = "superset"
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}; $${NAME} is a literal for the
# container's shell
_VARIABLE = re.compile(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)(:?[-?][^}]*)?\}")


@pytest.fixture(scope="module")
def compose_text() -> str:
    return (PROJECT_ROOT / "docker-compose.yaml").read_text()


@pytest.fixture(scope="module")
def services(compose_text: str) -> dict:
    return yaml.safe_load(compose_text)["services"]


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    values = {}
    for line in (PROJECT_ROOT / ".env.example").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value
    return values


def _environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def test_every_service_of_the_official_shape_is_there(services: dict) -> None:
    assert set(services) == AIRFLOW_SERVICES | OTHER_SERVICES | {BI_SERVICE}


def test_airflow_services_share_one_image_built_from_the_dockerfile(services: dict) -> None:
    images = {(services[s].get("image"), str(services[s].get("build"))) for s in AIRFLOW_SERVICES}
    assert len(images) == 1, images
    ((image, build),) = images
    assert build == "." and image
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    assert "uv sync --frozen" in dockerfile
    assert "COPY pyproject.toml uv.lock" in dockerfile
    for name in OTHER_SERVICES:
        assert "build" not in services[name] and ":" in services[name]["image"], name
    assert "mailpit" in services["mailpit"]["image"]


def test_superset_is_built_from_its_own_lock_and_reads_as_bi_reader_only(services: dict) -> None:
    superset = services[BI_SERVICE]
    assert superset["build"] == {"context": ".", "dockerfile": "bi/Dockerfile"}
    dockerfile = (PROJECT_ROOT / "bi" / "Dockerfile").read_text()
    assert "COPY bi/pyproject.toml bi/uv.lock" in dockerfile
    assert "uv sync --project bi --frozen" in dockerfile
    assert "python -m exops_bi.provision && exec gunicorn" in dockerfile
    for folder in re.findall(r"^COPY (?!--from)\S+ \S+ ?(\S*)$", dockerfile, re.M):
        assert not folder or (PROJECT_ROOT / folder.rstrip("/")).exists(), folder
    env = _environment(superset)
    assert _warehouse_credentials(env) == {"EXOPS_BI_ADMIN_PASSWORD", "EXOPS_BI_READER_URL"}
    assert env["EXOPS_BI_READER_URL"].startswith(
        "postgresql://bi_reader:${EXOPS_BI_READER_PASSWORD:?"
    )
    assert "@warehouse:5432/" in env["EXOPS_BI_READER_URL"]
    assert env["SUPERSET_SECRET_KEY"].startswith("${SUPERSET_SECRET_KEY:?")
    assert superset["ports"] == ["127.0.0.1:${SUPERSET_PORT:-8088}:8088"]
    assert superset["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"


def test_no_additional_requirements_at_start_up(compose_text: str) -> None:
    assert "_PIP_ADDITIONAL_REQUIREMENTS" not in compose_text
    assert "pip install" not in compose_text


def test_every_variable_used_is_in_env_example(compose_text: str, env_example: dict) -> None:
    used = {
        m.group(1)
        for m in _VARIABLE.finditer(compose_text)
        if not m.group(2) or m.group(2).lstrip(":").startswith("?")
    }
    assert used, "the compose file takes its settings from .env"
    missing = sorted(used - set(env_example))
    assert not missing, f"used in docker-compose.yaml but not in .env.example: {missing}"


def test_env_example_holds_no_real_secret(env_example: dict) -> None:
    secret_like = [k for k in env_example if re.search(r"PASSWORD|SECRET|FERNET", k)]
    assert len(secret_like) >= 8
    for key in secret_like:
        assert env_example[key] == "change-me", key
    tracked = subprocess.run(
        ["git", "ls-files", ".env"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    assert tracked.stdout.strip() == "", ".env must never be committed"
    assert ".env" in (PROJECT_ROOT / ".gitignore").read_text().split()


def test_one_jwt_secret_and_fernet_key_for_every_airflow_service(services: dict) -> None:
    for key, var in (
        ("AIRFLOW__API_AUTH__JWT_SECRET", "${AIRFLOW_JWT_SECRET:?set AIRFLOW_JWT_SECRET in .env}"),
        ("AIRFLOW__CORE__FERNET_KEY", "${AIRFLOW_FERNET_KEY:?set AIRFLOW_FERNET_KEY in .env}"),
    ):
        values = {s: _environment(services[s]).get(key) for s in AIRFLOW_SERVICES}
        assert set(values.values()) == {var}, values


def test_airflow_is_celery_on_postgres_and_redis_without_examples(services: dict) -> None:
    for name in AIRFLOW_SERVICES:
        env = _environment(services[name])
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "false"
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg://")
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"].startswith(
            "postgresql+psycopg_async://"
        )
        for key in ("SQL_ALCHEMY_CONN", "SQL_ALCHEMY_CONN_ASYNC"):
            assert "@airflow-db:5432/" in env[f"AIRFLOW__DATABASE__{key}"]
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:6379/")
        assert env["EXOPS_SMTP_HOST"] == "${EXOPS_SMTP_HOST}"
    assert "@warehouse:5432/" in _environment(services["airflow-init"])["EXOPS_WAREHOUSE_URL"]


def test_tasks_reach_the_api_server_it_runs(services: dict, env_example: dict) -> None:
    command = services["airflow-apiserver"]["command"]
    port = command[command.index("--port") + 1]
    for name in AIRFLOW_SERVICES:
        url = _environment(services[name])["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]
        assert url == f"http://airflow-apiserver:{port}/execution/"
    assert env_example["EXOPS_SMTP_HOST"] == "mailpit"
    assert services["mailpit"]["expose"] == [int(env_example["EXOPS_SMTP_PORT"])]


def test_commands_are_the_airflow_3_components(services: dict) -> None:
    expected = {
        "airflow-apiserver": "api-server",
        "airflow-scheduler": "scheduler",
        "airflow-dag-processor": "dag-processor",
        "airflow-triggerer": "triggerer",
    }
    for name, sub in expected.items():
        assert services[name]["command"][:2] == ["airflow", sub], name
    for name, stage in WORKERS.items():
        assert services[name]["command"] == [
            "airflow",
            "celery",
            "worker",
            "--queues",
            STAGE_QUEUES[stage],
        ], name
    init = " ".join(services["airflow-init"]["command"])
    assert "airflow db migrate" in init
    assert "exops warehouse init --stage-passwords-from-env --bi-reader-password-from-env" in init


def _warehouse_credentials(env: dict[str, str]) -> set[str]:
    """The warehouse URL and password variables a service's environment holds."""
    return {k for k in env if re.match(r"EXOPS_.*(_URL|_PASSWORD)(_FILE)?$", k)} | {
        k for k, v in env.items() if "WAREHOUSE_PASSWORD" in v or "WAREHOUSE_USER" in v
    }


def test_each_worker_holds_only_its_own_roles_credentials(services: dict) -> None:
    for name, stage in WORKERS.items():
        env = _environment(services[name])
        url_env = STAGE_URL_ENVS[stage]
        assert _warehouse_credentials(env) == {url_env}, name
        role = STAGE_ROLES[stage]
        password = f"${{EXOPS_{stage.upper()}_PASSWORD:?"
        assert env[url_env].startswith(f"postgresql://{role}:{password}"), env[url_env]
        assert "@warehouse:5432/" in env[url_env]


def test_the_admin_url_reaches_the_init_job_alone(services: dict, compose_text: str) -> None:
    for name in AIRFLOW_SERVICES - {"airflow-init"} - set(WORKERS):
        assert _warehouse_credentials(_environment(services[name])) == set(), name
    init = _environment(services["airflow-init"])
    assert _warehouse_credentials(init) == {
        "EXOPS_WAREHOUSE_URL",
        "EXOPS_LOADER_PASSWORD",
        "EXOPS_TRANSFORMER_PASSWORD",
        "EXOPS_PUBLISHER_PASSWORD",
        "EXOPS_BI_READER_PASSWORD",
    }
    # the superuser's password: the warehouse server itself and the init job, nowhere else
    holders = {n for n, s in services.items() if "WAREHOUSE_PASSWORD" in str(s)}
    assert holders == {"warehouse", "airflow-init"}


def test_secrets_are_required_not_defaulted(compose_text: str) -> None:
    for m in _VARIABLE.finditer(compose_text):
        if re.search(r"PASSWORD|SECRET|FERNET", m.group(1)):
            assert (m.group(2) or "").startswith(":?"), f"${{{m.group(1)}}} is not required"


def test_named_volumes_are_declared(compose_text: str, services: dict) -> None:
    declared = set(yaml.safe_load(compose_text).get("volumes") or {})
    used = set()
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if not source.startswith((".", "/", "$", "~")):
                used.add(source)
    assert used, "databases keep their data in named volumes"
    assert used <= declared, used - declared
    assert {"airflow-db-data", "warehouse-data"} <= used


def test_every_long_running_service_has_a_healthcheck(services: dict) -> None:
    for name, service in services.items():
        if name == "airflow-init":
            assert service.get("restart") == "no"
            continue
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), name


def test_depends_on_uses_conditions_that_can_be_met(services: dict) -> None:
    for name, service in services.items():
        for dep, spec in (service.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            condition = spec["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep}'s health"
            else:
                assert (dep, condition) == ("airflow-init", "service_completed_successfully")
    for name in AIRFLOW_SERVICES - {"airflow-init"}:
        deps = services[name]["depends_on"]
        assert deps["airflow-init"]["condition"] == "service_completed_successfully", name
        assert {"redis", "airflow-db", "warehouse"} <= set(deps), name


def test_published_ports_are_bound_to_loopback(services: dict) -> None:
    published = [(n, p) for n, s in services.items() for p in s.get("ports", [])]
    assert published, "the UI ports are published"
    for name, port in published:
        assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def _production_section() -> str:
    readme = (PROJECT_ROOT / "README.md").read_text()
    match = re.search(r"^## Running in production\n(.*?)(?=^## |\Z)", readme, re.M | re.S)
    assert match, "README.md has a 'Running in production' section"
    return match.group(1)


def test_every_service_the_readme_names_exists(services: dict) -> None:
    section = _production_section()
    named = set(re.findall(r"`((?:airflow-[a-z-]+)|redis|warehouse|mailpit|superset)`", section))
    assert named - set(services) == set(), f"README names unknown services {named - set(services)}"
    assert set(services) - named == set(), f"README omits {set(services) - named}"
    for phrase in ("--scale airflow-worker", "airflow backfill create", ".env.example"):
        assert phrase in section


def test_dockerfile_copies_what_the_image_needs() -> None:
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY (?!--from)(\S+) ", dockerfile, re.M))
    for folder in copied - {"pyproject.toml"}:
        assert (PROJECT_ROOT / folder).exists(), folder
    assert {"plugins", "dags", "dbt_project", "expectations", "config"} <= copied
    ignored = (PROJECT_ROOT / ".dockerignore").read_text().split()
    assert {".env", ".venv", "var"} <= set(ignored)
    assert re.search(r"^USER 50000$", dockerfile, re.M)


def test_compose_reads_only_files_that_exist(services: dict) -> None:
    for service in services.values():
        build = service.get("build")
        if isinstance(build, dict):
            assert (PROJECT_ROOT / build["context"] / build["dockerfile"]).is_file()
        elif build:
            assert (PROJECT_ROOT / build / "Dockerfile").is_file()
    assert Path(PROJECT_ROOT / "dags").is_dir()
