"""Every DAG imports cleanly, fast, with tags, an owner and retries, and no heavy imports."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from exops.airflow_local import airflow_env
from exops.settings import PROJECT_ROOT

DAGS_DIR = PROJECT_ROOT / "dags"
DAG_FILES = sorted(DAGS_DIR.glob("*.py"))
HEAVY = {"pandas", "numpy", "great_expectations", "dbt", "matplotlib", "psycopg", "sqlalchemy"}

PROBE = r"""
import json, sys, time
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
out = {"errors": {k: str(v) for k, v in bag.import_errors.items()},
       "stats": [[s.file, s.duration.total_seconds()] for s in bag.dagbag_stats],
       "dags": {}}
for dag_id, dag in bag.dags.items():
    out["dags"][dag_id] = {
        "tags": sorted(dag.tags),
        "fileloc": dag.fileloc,
        "doc_md": dag.doc_md,
        "tasks": {t.task_id: {"owner": t.owner, "retries": t.retries,
                              "retry_delay": t.retry_delay.total_seconds(),
                              "execution_timeout": t.execution_timeout.total_seconds()
                              if t.execution_timeout else None,
                              "on_failure": [f"{c.__module__}.{c.__qualname__}"
                                             for c in (t.on_failure_callback or [])],
                              "queue": t.queue,
                              "upstream": sorted(t.upstream_task_ids),
                              "trigger_rule": str(getattr(t.trigger_rule, "value", ""))}
                  for t in dag.tasks},
        "max_active_runs": dag.max_active_runs,
    }
sys.stdout.write("@@JSON@@" + json.dumps(out))
"""


def test_there_are_dags() -> None:
    assert DAG_FILES, "no DAG files under dags/"


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_has_no_heavy_top_level_imports(path: Path) -> None:
    tree = ast.parse(path.read_text())
    top_level = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            top_level += [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            top_level.append(node.module.split(".")[0])
    assert not HEAVY.intersection(top_level), (
        f"{path.name} imports {HEAVY & set(top_level)} at top level"
    )


def _parse_dags(tmp_path_factory, var: Path, **extra_env: str) -> dict:
    """The DagBag of dags/ in a fresh process, with ``var`` as EXOPS_VAR_DIR."""
    env = airflow_env()
    env["AIRFLOW_HOME"] = str(tmp_path_factory.mktemp("airflow_home"))
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{env['AIRFLOW_HOME']}/airflow.db"
    env["EXOPS_VAR_DIR"] = str(var)
    env.update(extra_env)
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(DAGS_DIR)], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(proc.stdout.split("@@JSON@@", 1)[1])
    data["wall_s"] = time.perf_counter() - started
    return data


@pytest.fixture(scope="module")
def parsed_var(tmp_path_factory) -> Path:
    """A local state whose dbt node list `exops transform --parse` wrote (as `make install`)."""
    var = tmp_path_factory.mktemp("var")
    env = dict(os.environ, EXOPS_VAR_DIR=str(var))
    exops = Path(sys.executable).with_name("exops")
    proc = subprocess.run(
        [str(exops), "transform", "--parse"], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (var / "dbt" / "dbt_nodes.json").is_file()
    return var


def test_the_node_list_names_the_relation_of_each_model(parsed_var: Path) -> None:
    from exops import dbt_nodes

    models, why = dbt_nodes.read(parsed_var / "dbt" / dbt_nodes.FILE_NAME)
    assert why is None
    relations = {m.name: m.relation for m in models}
    # what a day's build checks exists before leaving the views out (exops.transform)
    assert relations["stg_exchange__trades"] == "staging.stg_exchange__trades"
    assert relations["stg_crm__campaigns"] == "staging.stg_crm__campaigns"
    assert relations["exchange_daily_kpis"] == "marts.exchange_daily_kpis"
    assert all(relations.values())


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory, parsed_var: Path) -> dict:
    return _parse_dags(tmp_path_factory, parsed_var)


def test_dags_import_without_errors(dagbag: dict) -> None:
    assert dagbag["errors"] == {}
    files = {Path(d["fileloc"]).name for d in dagbag["dags"].values()}
    assert files == {p.name for p in DAG_FILES}, "every DAG file defines a DAG"


def test_dag_parse_time_is_printed(dagbag: dict, capsys) -> None:
    with capsys.disabled():
        for file, seconds in dagbag["stats"]:
            print(f"\n  DAG parse time {Path(file).name}: {seconds:.3f}s")
    assert all(seconds >= 0 for _, seconds in dagbag["stats"])
    assert len(dagbag["stats"]) == len(DAG_FILES)


def test_every_dag_has_tags_owner_and_retries(dagbag: dict) -> None:
    for dag_id, dag in dagbag["dags"].items():
        assert "exops" in dag["tags"], f"{dag_id} lacks the exops tag"
        assert len(dag["tags"]) >= 2, f"{dag_id} needs a stage tag too"
        for task_id, t in dag["tasks"].items():
            assert t["owner"] not in ("", "airflow"), f"{dag_id}.{task_id} has no real owner"
            if task_id.startswith("dbt."):
                # a model's task reports the build (which retries); it builds its model alone
                # only when an engineer clears it, never on its own
                assert t["retries"] == 0, f"{dag_id}.{task_id} would rebuild on its own"
                continue
            assert t["retries"] >= 1, f"{dag_id}.{task_id} has no retries"
            assert t["retry_delay"] > 0, f"{dag_id}.{task_id} retries without delay"
            assert t["execution_timeout"], f"{dag_id}.{task_id} has no execution_timeout"


def test_every_task_tells_data_engineers_when_it_fails(dagbag: dict) -> None:
    from exops.orchestration import stage_of

    for dag_id, dag in dagbag["dags"].items():
        for task_id, t in dag["tasks"].items():
            assert t["on_failure"] == ["exops.orchestration.on_task_failure"], (dag_id, task_id)
            assert stage_of(task_id) in ("ingest", "transform", "validate", "publish")


def test_task_timeouts_come_from_settings_and_never_break_parsing(
    tmp_path_factory, monkeypatch
) -> None:
    from exops.dag_defaults import task_timeout

    monkeypatch.setenv("EXOPS_INGEST_TIMEOUT_MINUTES", "45")
    assert task_timeout("ingest").total_seconds() == 45 * 60
    for bad in ("soon", "0", "-3", "1.5"):
        monkeypatch.setenv("EXOPS_INGEST_TIMEOUT_MINUTES", bad)
        assert task_timeout("ingest").total_seconds() == 120 * 60
    # malformed settings in the environment Airflow parses the DAGs in: still no error
    env = airflow_env()
    env["AIRFLOW_HOME"] = str(tmp_path_factory.mktemp("airflow_home_bad_settings"))
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{env['AIRFLOW_HOME']}/airflow.db"
    env.update(
        EXOPS_INGEST_TIMEOUT_MINUTES="two hours",
        EXOPS_TRANSFORM_TIMEOUT_MINUTES="-1",
        EXOPS_TASK_RETRIES="many",
        EXOPS_RETRY_DELAY_SECONDS="",
    )
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(DAGS_DIR)], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(proc.stdout.split("@@JSON@@", 1)[1])
    assert data["errors"] == {}
    tasks = data["dags"]["exops_ingest"]["tasks"]
    assert {t["execution_timeout"] for t in tasks.values()} == {120 * 60}
    assert data["dags"]["exops_transform"]["tasks"]["dbt_build"]["execution_timeout"] == 240 * 60


def test_ingest_dag_has_one_task_per_source(dagbag: dict) -> None:
    tasks = set(dagbag["dags"]["exops_ingest"]["tasks"])
    assert tasks == {"ingest_exchange", "ingest_crm", "ingest_feedback"}
    assert dagbag["dags"]["exops_ingest"]["max_active_runs"] == 1


def test_each_stage_runs_on_its_own_queue(dagbag: dict) -> None:
    """One Celery worker per stage, holding only its role's credentials, takes its queue."""
    queues = {
        (dag_id, task_id): t["queue"]
        for dag_id, dag in dagbag["dags"].items()
        for task_id, t in dag["tasks"].items()
        if not task_id.startswith("dbt.")
    }
    models = dagbag["dags"]["exops_transform"]["tasks"]
    assert {t["queue"] for task_id, t in models.items() if task_id.startswith("dbt.")} == {
        "exops_transformer"
    }
    assert queues == {
        ("exops_ingest", "ingest_exchange"): "exops_loader",
        ("exops_ingest", "ingest_crm"): "exops_loader",
        ("exops_ingest", "ingest_feedback"): "exops_loader",
        ("exops_transform", "dbt_build"): "exops_transformer",
        ("exops_transform", "dbt_done"): "exops_transformer",
        ("exops_publish", "validate"): "exops_transformer",
        ("exops_publish", "publish"): "exops_publisher",
    }


def test_transform_dag_has_a_task_per_dbt_model_wired_as_its_lineage(
    dagbag: dict, parsed_var: Path
) -> None:
    """exops_transform: the one dbt_build, then a task per dbt model of the manifest, each
    after the models it reads (dbt_build for those reading sources only), running whatever
    their upstream's outcome (they report; dbt decided)."""
    manifest = json.loads((parsed_var / "dbt" / "target" / "manifest.json").read_text())
    models = {
        n["name"]: {
            manifest["nodes"][d]["name"]
            for d in n["depends_on"]["nodes"]
            if manifest["nodes"].get(d, {}).get("resource_type") == "model"
        }
        for n in manifest["nodes"].values()
        if n["resource_type"] == "model"
    }
    assert len(models) >= 50
    tasks = dagbag["dags"]["exops_transform"]["tasks"]
    assert set(tasks) == {"dbt_build", "dbt_done"} | {f"dbt.{m}" for m in models}
    for name, reads in models.items():
        task = tasks[f"dbt.{name}"]
        assert set(task["upstream"]) == ({f"dbt.{r}" for r in reads} or {"dbt_build"}), name
        assert task["trigger_rule"] == "all_done"
    assert "dbt.int_user_trades" in tasks["dbt.int_user_product_daily"]["upstream"]
    # the run's outcome: after the build and every model that ends the lineage
    ends = {f"dbt.{m}" for m in models if not any(m in reads for reads in models.values())}
    assert set(tasks["dbt_done"]["upstream"]) == {"dbt_build"} | ends
    assert "dbt.exchange_daily_kpis" in ends
    assert tasks["dbt_done"]["trigger_rule"] == "none_failed"
    assert "only `dbt_build`" not in dagbag["dags"]["exops_transform"]["doc_md"]


@pytest.mark.parametrize("state", ["missing", "corrupt"])
def test_transform_dag_without_a_usable_node_list_is_one_task_saying_why(
    tmp_path_factory, state: str
) -> None:
    var = tmp_path_factory.mktemp(f"var_{state}")
    if state == "corrupt":
        (var / "dbt").mkdir()
        (var / "dbt" / "dbt_nodes.json").write_text('{"format": 1, "models": [{"name"')
    data = _parse_dags(tmp_path_factory, var)
    assert data["errors"] == {}
    dag = data["dags"]["exops_transform"]
    assert set(dag["tasks"]) == {"dbt_build"}
    why = "no dbt node list at" if state == "missing" else "cannot be read"
    assert "only `dbt_build`" in dag["doc_md"] and why in dag["doc_md"]
