"""Validate the marts, then send the KPI alerts and the daily ops report.

Scheduled on the marts Asset. `validate` runs the Great Expectations suites: a critical
failure fails the task (data engineers get one data-quality email) and `publish` never runs.
`publish` is idempotent: each alert and each day's report is emailed at most once, however
often the task is retried or the DAG rerun. The `as_of` param backfills a past day's report.
"""

from __future__ import annotations

from airflow.sdk import Asset, Param, dag, task

from exops.assets import MARTS_ASSET_URI
from exops.dag_defaults import DEFAULT_ARGS, START_DATE, stage_queue, task_timeout


@dag(
    dag_id="exops_publish",
    description="Quality gate (GX), KPI alert emails and the daily ops report",
    schedule=[Asset(name="marts", uri=MARTS_ASSET_URI)],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["exops", "publish", "quality"],
    params={
        "as_of": Param(
            None,
            type=["null", "string"],
            description="Business date to validate and report (YYYY-MM-DD); default: latest loaded",
        )
    },
    doc_md=__doc__,
)
def exops_publish():
    # the gate runs as the transformer (it writes schema quality), publishing as the publisher
    @task(execution_timeout=task_timeout("publish"), queue=stage_queue("transformer"))
    def validate(params: dict | None = None) -> dict:
        from exops.orchestration import validate_marts

        return validate_marts((params or {}).get("as_of"))

    @task(execution_timeout=task_timeout("publish"), queue=stage_queue("publisher"))
    def publish(params: dict | None = None) -> dict:
        from exops.orchestration import publish_outputs

        return publish_outputs((params or {}).get("as_of"))

    validate() >> publish()


exops_publish()
