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


if __name__ == "__main__":
    sys.exit(main())
