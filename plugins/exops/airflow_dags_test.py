"""``airflow dags test`` for several DAGs in order, in one interpreter.

    python -m exops.airflow_dags_test 2026-11-30 exops_ingest exops_transform exops_publish \\
        --conf 'exops_publish={"as_of": "2026-11-30"}'

Each DAG goes through Airflow's own CLI code path, exactly as ``airflow dags test <dag_id>
<date> --dagfile-path <dags folder>/<dag_id>.py`` runs it (each DAG file is named after its
DAG: only that file is parsed and written to the metadata DB); running the daily chain's three
DAGs in one process pays Airflow's start-up (CLI, configuration, the in-process execution
API, the tasks' imports) once instead of three times. The first DAG run that fails stops the
chain, with exit status 1.
"""

from __future__ import annotations

import argparse
import sys

MARK = "== airflow dags test"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logical_date")
    parser.add_argument("dag_ids", nargs="+")
    parser.add_argument(
        "--conf", action="append", default=[], metavar="DAG_ID=JSON", help="a DAG run's conf"
    )
    args = parser.parse_args(argv)
    confs = dict(c.split("=", 1) for c in args.conf)

    from pathlib import Path

    from airflow.cli import cli_parser
    from airflow.configuration import conf, write_default_airflow_configuration_if_needed

    write_default_airflow_configuration_if_needed()
    _build_execution_api_for_this_sdk()
    dags_folder = Path(conf.get("core", "dags_folder"))
    airflow_cli = cli_parser.get_parser()
    for dag_id in args.dag_ids:
        command = ["dags", "test", dag_id, args.logical_date]
        dag_file = dags_folder / f"{dag_id}.py"
        if dag_file.is_file():
            command += ["--dagfile-path", str(dag_file)]
        if dag_id in confs:
            command += ["--conf", confs[dag_id]]
        print(f"{MARK} {dag_id} {args.logical_date}", flush=True)
        cli_args = airflow_cli.parse_args(command)
        try:
            cli_args.func(cli_args)
        except SystemExit as exc:  # `dags test` exits with "DagRun failed"
            if exc.code not in (None, 0):
                print(f"{MARK} {dag_id}: failed: {exc.code}", flush=True)
                return 1
        print(f"{MARK} {dag_id}: success", flush=True)
    return 0


#: the newest execution API versions the in-process API keeps, with the one before them as its
#: base: a route the newest version removed (``/dag-runs/{dag_id}/previous``, moved in
#: 2026-04-06) must be restored by a version change of the bundle, or Cadwyn refuses it
KEPT_API_VERSIONS = 2


def _build_execution_api_for_this_sdk() -> None:
    """Build the in-process execution API for the newest API versions only.

    ``dags test`` runs each task against an execution API built in this process, whose first
    request makes Cadwyn generate the routers of every API version Airflow serves (ten in
    3.3): 2-4 s measured, for older Task SDKs that never call this API. Its one client is
    this interpreter's own Task SDK, which speaks the newest version, so the bundle keeps the
    newest versions and their changes, and the version before them as the base: the newest
    version's routes and schemas are exactly Airflow's. Left as Airflow builds it when this
    Airflow is laid out differently, its SDK speaks another version or Cadwyn refuses the
    bundle; Cadwyn generates the routes only on the first request, so whether it accepts them
    is checked for the pinned Airflow by tests/unit/test_airflow_dags_test.py.
    """
    try:
        from airflow.api_fastapi.execution_api import versions
        from airflow.sdk.api.datamodels._generated import API_VERSION
        from cadwyn import HeadVersion, Version, VersionBundle
    except ImportError:
        return
    full = versions.bundle
    served = list(full.versions)
    if len(served) <= KEPT_API_VERSIONS or served[0].value != API_VERSION:
        return
    kept, base = served[:KEPT_API_VERSIONS], served[KEPT_API_VERSIONS]
    changes = [change for version in kept for change in version.changes]
    for change in changes:  # Cadwyn binds a change to one bundle; this one replaces Airflow's
        change._bound_version_bundle = None
    try:
        versions.bundle = VersionBundle(
            HeadVersion(), *(Version(v.value, *v.changes) for v in kept), Version(base.value)
        )
    except Exception:  # noqa: BLE001 - any refusal: Airflow's own bundle, as it was
        for change in changes:
            change._bound_version_bundle = full
        versions.bundle = full


def _exit(status: int) -> None:
    """Exit without the interpreter's own finalisation: after a chain that ran dbt and Great
    Expectations in this process, tearing down their objects took seconds (3-4 s measured)
    that no one needs. atexit handlers still run and every stream is flushed first."""
    import atexit
    import logging
    import os

    atexit._run_exitfuncs()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    _exit(main())
