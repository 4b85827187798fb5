"""Build the KPI marts: one in-process ``dbt build`` of ``dbt_project/`` against the warehouse.

dbt reads its connection from the EXOPS_PG_* variables (``dbt_project/profiles.yml``); they
are derived here from the warehouse URL, so callers only ever pass a URL. dbt runs as the
transformer (``EXOPS_TRANSFORMER_URL``, see :func:`exops.warehouse.stage_url`) and does only
what that role may: build tables and views in staging, intermediate and marts. Roles,
grants and passwords are ``exops warehouse init``'s (:mod:`exops.roles`). Each dbt
invocation costs seconds of start-up, so everything (models, data tests) happens in a single
``dbt build``. What that build must bring up to date (its change
window) is computed once, before dbt starts (:mod:`exops.transform.window`), recorded in
``transform.builds`` and handed to dbt in its environment (``EXOPS_DBT_*``).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from psycopg.conninfo import conninfo_to_dict

from exops import warehouse
from exops.settings import SettingError, Settings, dbt_project_dir, load_settings, var_dir

log = logging.getLogger(__name__)

THREADS_ENV = "EXOPS_DBT_THREADS"


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingError as exc:
        raise TransformError(str(exc)) from None


def dbt_threads() -> int:
    """dbt's threads: ``EXOPS_DBT_THREADS``, default the number of cores."""
    return _settings().dbt_threads or os.cpu_count() or 1


def project_vars() -> dict:
    """The vars of dbt_project.yml (thresholds and windows the build shares with Python)."""
    import yaml

    return yaml.safe_load((dbt_project_dir() / "dbt_project.yml").read_text())["vars"]


def session_options() -> str:
    """PGOPTIONS of dbt's sessions.

    JIT compilation costs more than it saves on the marts' many small queries; the full
    build's sorts (deduplicating every trade) and index builds spill to disk with the server's
    default 4 MB, so the transform sessions get more (``EXOPS_DBT_WORK_MEM``, default 256MB;
    dbt runs two threads).
    """
    work_mem = _settings().dbt_work_mem
    return f"-c jit=off -c work_mem={work_mem} -c maintenance_work_mem={work_mem}"


class TransformError(RuntimeError):
    pass


@dataclass
class TransformResult:
    success: bool
    models_passed: int = 0
    models_failed: int = 0
    models_skipped: int = 0
    tests_passed: int = 0
    tests_failed: int = 0
    tests_warned: int = 0
    unit_tests_passed: int = 0
    unit_tests_failed: int = 0
    failures: list[str] = field(default_factory=list)
    elapsed_seconds: float = 0.0
    window: str = ""
    build_id: int | None = None
    # nothing new since the last successful build: dbt did not run
    nothing_new: bool = False
    # per dbt node run (unique_id): status ("success", "error", "skipped", "pass", "fail",
    # ...), dbt's message and seconds; what the per-model tasks of exops_transform report
    nodes: dict[str, dict] = field(default_factory=dict)

    def summary(self) -> str:
        state = "OK" if self.success else "FAILED"
        if self.success and self.window and not self.models_passed + self.models_skipped:
            return f"dbt build not needed ({self.elapsed_seconds:.1f}s): {self.window}"
        text = (
            f"dbt build {state} in {self.elapsed_seconds:.1f}s: "
            f"models {self.models_passed} ok / {self.models_failed} failed / "
            f"{self.models_skipped} skipped; data tests {self.tests_passed} ok / "
            f"{self.tests_failed} failed / {self.tests_warned} warned; unit tests "
            f"{self.unit_tests_passed} ok / {self.unit_tests_failed} failed"
        )
        if self.window:
            text += f"\n  change window: {self.window}"
        if self.failures:
            text += "\n" + "\n".join(f"  - {f}" for f in self.failures)
        return text


def dbt_var_dir() -> Path:
    path = var_dir() / "dbt"
    path.mkdir(parents=True, exist_ok=True)
    return path


def profile_env(url: str) -> dict[str, str]:
    """The EXOPS_PG_* variables of profiles.yml for a postgresql:// URL (socket dirs too)."""
    params = conninfo_to_dict(url)
    return {
        "EXOPS_PG_HOST": str(params.get("host") or "localhost"),
        "EXOPS_PG_PORT": str(params.get("port") or "5432"),
        "EXOPS_PG_USER": str(params.get("user") or "postgres"),
        "EXOPS_PG_PASSWORD": str(params.get("password") or ""),
        "EXOPS_PG_DBNAME": str(params.get("dbname") or "postgres"),
    }


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    previous = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _dbt_args(command: list[str], target: Path | None = None) -> list[str]:
    project = dbt_project_dir()
    out = dbt_var_dir()
    return [
        *command,
        "--project-dir",
        str(project),
        "--profiles-dir",
        str(project),
        "--target-path",
        str(target or out / "target"),
        "--log-path",
        str(out / "logs"),
    ]


def _invoke(
    url: str | None,
    command: list[str],
    callbacks: list | None = None,
    target: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> Any:
    from dbt.cli.main import dbtRunner  # heavy import, only when building

    url = url or warehouse.stage_url("transformer")
    env = profile_env(url)
    env["PGOPTIONS"] = session_options()
    # dbt's file log: its debug level (dbt's default) writes every statement and event, a
    # good part of a day's build (a process that is mostly dbt's own Python)
    env["DBT_LOG_LEVEL_FILE"] = _settings().dbt_log_level
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    env.update(extra_env or {})
    with _environment(env):
        return dbtRunner(callbacks=callbacks or []).invoke(_dbt_args(command, target))


def _failure_text(result: Any) -> str:
    node = result.node
    kind = node.resource_type
    name = getattr(node, "name", node.unique_id)
    message = (result.message or "").strip()
    if kind == "test" and result.failures:
        message = f"{result.failures} failing row(s). {message}".strip()
    return f"{kind} {name}: {result.status}: {message}"


def build(
    url: str | None = None,
    *,
    full_refresh: bool = False,
    select: str | None = None,
    vars: dict | None = None,
    unit_tests: bool = False,
    threads: int | None = None,
    progress: Callable[[str], None] | None = None,
    data_tests: bool = True,
    skip_when_nothing_new: bool = True,
) -> TransformResult:
    """Bring the marts up to date with what was loaded since the last successful build.

    The change window is computed first (:func:`exops.transform.window.compute`); when nothing
    was loaded since the last successful build of the same dbt project, dbt does not run.
    Otherwise one ``dbt build`` (models and data tests; ``--full-refresh`` when the window
    says everything, or when asked) runs with the window in its environment (EXOPS_DBT_*,
    ``ChangeWindow.dbt_env``; ``vars`` override it), and the build is recorded
    in ``transform.builds``. A build that is not full selects ``day_build``
    (dbt_project/selectors.yml): every node but the staging views and the time spine, which
    hold no data and change only with the code (which makes a build full); their data tests
    still run. When a model's relation is missing, it builds every node. A ``select``-ed
    build is not recorded as covering the loads (it did not build every model). dbt's unit
    tests check the SQL against fixed rows, so the daily builds leave them out (as dbt
    recommends for production); ``unit_tests=True`` runs them too (the test suite does).
    ``data_tests=False`` builds the models only (a test that compares a rebuild with
    relations the data tests already passed on). ``skip_when_nothing_new=False`` runs dbt
    on an empty window too: every node, none with rows to process (what dbt itself costs a
    day's build; the benchmark's ``empty_window_build_s``); it changes no mart.
    """
    import json

    from exops.transform import window as change_window

    url = url or warehouse.stage_url("transformer")
    threads = threads or dbt_threads()
    started = time.monotonic()
    say = progress or (lambda _m: None)
    with build_lock(url, progress), warehouse.connection(url, autocommit=True) as conn:
        win = change_window.compute(conn, int(project_vars()["late_arrival_days"]))
        if full_refresh:
            win.everything("asked for (--full-refresh)")
        say(f"change window: {win.describe()}")
        if win.full:
            change_window.drop_legacy_state(conn)
        recorded = select is None
        runs_dbt = not (win.nothing and skip_when_nothing_new)
        build_id = change_window.record_start(conn, win, threads, runs_dbt) if recorded else None
        if recorded and not runs_dbt:
            out = TransformResult(
                success=True, window=win.describe(), build_id=build_id, nothing_new=True
            )
            out.elapsed_seconds = time.monotonic() - started
            return out

        command = ["build", "--threads", str(threads)]
        if win.full:
            command.append("--full-refresh")
        elif select is None and not vars:
            # a day's build leaves out what holds no data (views, the time spine): only a code
            # change changes them, and a code change makes the build full
            missing = _missing_relations(conn)
            if missing:
                log.info("every node is built: %s", missing)
                say(f"every node is built: {missing}")
            else:
                command += ["--selector", DAY_SELECTOR]
        if not win.full:
            # the manifest (manifest.json, semantic_manifest.json) changes only with the code,
            # which makes a build full: a day's build does not write it again (twice per build,
            # about a second of dbt's time); its run_results.json is written below
            command.append("--no-write-json")
        excluded = ([] if unit_tests else ["unit_test"]) + ([] if data_tests else ["test"])
        if excluded:
            command += ["--exclude-resource-type", *excluded]
        if select:
            command += ["--select", select]
        if vars:
            vars = dict(vars)
            if "window_start" in vars:
                # a window by hand: every user's rows from its start (the stored window users
                # are the computed window's)
                vars.setdefault("all_users_start", vars["window_start"])
            command += ["--vars", json.dumps(vars, default=str)]

        callbacks = []
        if progress is not None:

            def on_event(event: Any) -> None:
                if event.info.name in ("LogModelResult", "LogTestResult", "LogHookEndLine"):
                    progress(event.info.msg)

            callbacks.append(on_event)

        try:
            res = _invoke(url, command, callbacks, extra_env=win.dbt_env())
        except BaseException:
            if build_id is not None:
                change_window.record_end(conn, build_id, success=False)
            raise
        out = _summarise(res)
        if not win.full:
            _write_run_results(res)
        _keep_node_list(refresh=win.full)
        out.window = win.describe()
        out.build_id = build_id
        if build_id is not None:
            change_window.record_end(conn, build_id, success=out.success)
    out.elapsed_seconds = time.monotonic() - started
    return out


def _write_run_results(res: Any) -> None:
    """``target/run_results.json`` of a build run with ``--no-write-json`` (dbt's own artifact,
    written from the result dbt returned): what each node did and how long it took."""
    path = dbt_var_dir() / "target" / "run_results.json"
    try:
        if hasattr(res.result, "write"):
            path.parent.mkdir(parents=True, exist_ok=True)
            res.result.write(str(path))
    except (OSError, TypeError, ValueError) as exc:
        log.warning("dbt's run results were not written to %s: %s", path, exc)


# dbt_project/selectors.yml: an incremental build's nodes
DAY_SELECTOR = "day_build"


def _missing_relations(conn: Any) -> str | None:
    """Why a day's build cannot leave relations out: the models' relations that the warehouse
    lacks (dropped by hand: dbt builds them again when it builds every node), or that the
    node list (:mod:`exops.dbt_nodes`, kept beside the manifest) is not usable. None when
    every model's relation exists."""
    from exops import dbt_nodes

    models, why = dbt_nodes.read(dbt_var_dir() / dbt_nodes.FILE_NAME)
    if why is not None:
        return why
    relations = [m.relation for m in models if m.relation]
    found = {
        row[0]
        for row in conn.execute(
            "select table_schema || '.' || table_name from information_schema.tables"
            " where table_schema || '.' || table_name = any(%s)",
            (relations,),
        )
    }
    missing = sorted(set(relations) - found)
    if not missing:
        return None
    more = f" (+{len(missing) - 3} more)" if len(missing) > 3 else ""
    return "the warehouse lacks " + ", ".join(missing[:3]) + more


def _summarise(res: Any) -> TransformResult:
    out = TransformResult(success=bool(res.success))
    if res.exception is not None:
        out.failures.append(f"dbt could not run: {res.exception}")
    for result in getattr(res.result, "results", None) or []:
        kind = result.node.resource_type
        status = str(result.status)
        out.nodes[result.node.unique_id] = {
            "status": status,
            "message": (result.message or "").strip(),
            "failures": result.failures,
            "seconds": round(result.execution_time or 0.0, 2),
        }
        if kind in ("model", "seed", "snapshot"):
            if status == "success":
                out.models_passed += 1
            elif status == "skipped":
                out.models_skipped += 1
            else:
                out.models_failed += 1
                out.failures.append(_failure_text(result))
        elif kind == "test":
            if status == "pass":
                out.tests_passed += 1
            elif status == "warn":
                out.tests_warned += 1
            elif status != "skipped":
                out.tests_failed += 1
                out.failures.append(_failure_text(result))
        elif kind == "unit_test":
            if status == "pass":
                out.unit_tests_passed += 1
            elif status != "skipped":
                out.unit_tests_failed += 1
                out.failures.append(_failure_text(result))
        elif status in ("error", "fail"):
            out.failures.append(_failure_text(result))
    return out


BUILD_LOCK_KEY = "exops.transform.build"


@contextmanager
def build_lock(
    url: str | None = None, progress: Callable[[str], None] | None = None
) -> Iterator[None]:
    """One dbt build per warehouse database at a time: a second one waits for the first.

    Two builds at once would race on the same incremental models and tables; the lock is a
    session advisory lock held on its own connection for the whole build, so it is released
    even if this process dies.
    """
    with warehouse.connection(url, autocommit=True) as conn:
        got = conn.execute(
            "select pg_try_advisory_lock(hashtext(%s))", (BUILD_LOCK_KEY,)
        ).fetchone()[0]
        if not got:
            (progress or (lambda _m: None))(
                "another dbt build of this warehouse is running: waiting for it to finish"
            )
            conn.execute("select pg_advisory_lock(hashtext(%s))", (BUILD_LOCK_KEY,))
        try:
            yield
        finally:
            conn.execute("select pg_advisory_unlock(hashtext(%s))", (BUILD_LOCK_KEY,))


def _keep_node_list(refresh: bool) -> None:
    """The DAG's node list from the manifest dbt just wrote (:mod:`exops.dbt_nodes`); a build
    never fails on it (the DAG then shows what it read before, or its one task). The nodes
    change only with the dbt project, which makes a build full: a build that is not
    (``refresh`` false) keeps a usable list it finds (reading the manifest costs a day
    ~0.4 s, the list a few ms)."""
    from exops import dbt_nodes

    if not refresh and dbt_nodes.read(dbt_var_dir() / dbt_nodes.FILE_NAME)[1] is None:
        return
    manifest = dbt_var_dir() / "target" / "manifest.json"
    try:
        dbt_nodes.write_from_manifest(manifest, dbt_var_dir() / dbt_nodes.FILE_NAME)
    except (OSError, ValueError, KeyError) as exc:
        log.warning("the dbt node list was not updated from %s: %s", manifest, exc)


# dbt reads no connection to parse; the profile still wants its variables
PARSE_URL = "postgresql://exops@localhost:5432/exops"


def parse() -> Path:
    """``dbt parse``: dbt's manifest and the DAG's node list, without a warehouse (``make
    install`` runs it, so a fresh deployment's exops_transform shows its models at once)."""
    from exops import dbt_nodes

    res = _invoke(PARSE_URL, ["parse"])
    if not res.success:
        raise TransformError(f"dbt parse failed: {res.exception or res.result}")
    path = dbt_var_dir() / dbt_nodes.FILE_NAME
    dbt_nodes.write_from_manifest(dbt_var_dir() / "target" / "manifest.json", path)
    return path


def docs(url: str | None = None) -> Path:
    """Generate the dbt docs site into var/dbt/docs; returns that directory."""
    target = dbt_var_dir() / "docs"
    res = _invoke(url, ["docs", "generate"], target=target)
    if not res.success:
        raise TransformError(f"dbt docs generate failed: {res.exception or res.result}")
    return target


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def headline(url: str | None = None) -> dict:
    """The as-of day's exchange volume, traders and tier mix, read from the marts."""
    from psycopg import errors

    with warehouse.connection(url or warehouse.stage_url("transformer")) as conn:
        try:
            exists = conn.execute("select to_regclass('marts.exchange_daily_kpis')").fetchone()
        except errors.Error as exc:
            raise TransformError(f"cannot read the marts: {exc}") from exc
        if exists[0] is None:
            raise TransformError(
                "marts.exchange_daily_kpis does not exist: run the transform (exops transform)"
            )
        row = conn.execute(
            "select activity_date, volume_usd, traders, trade_count, active_users"
            " from marts.exchange_daily_kpis order by activity_date desc limit 1"
        ).fetchone()
        if row is None:
            raise TransformError("marts.exchange_daily_kpis is empty: run the transform first")
        tiers = conn.execute(
            "select tier, users from marts.user_tier_daily where activity_date = %s order by tier",
            (row[0],),
        ).fetchall()
    return {
        "as_of_date": _plain(row[0]),
        "volume_usd": _plain(row[1]),
        "traders": row[2],
        "trade_count": row[3],
        "active_users": row[4],
        "tier_mix": {tier: users for tier, users in tiers},
    }
