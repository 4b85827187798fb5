"""Validate the marts, then send the KPI alerts and the daily ops report.

Scheduled on the marts Asset: the scheduler starts a run when `exops_transform` has built the
marts, and the run reports the day(s) of the ingest runs behind that build (the raw Asset
events carry them). `validate` runs the Great Expectations suites: a critical failure fails
the task (data engineers get one data-quality email) and `publish` never runs. `publish`
reports the days `validate` passed and is idempotent: each alert and each day's report is
emailed at most once, however often the task is retried or the DAG rerun. The `as_of` param
backfills a past day's report; a run with neither reports the latest loaded day.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task

from exops.assets import marts_asset
from exops.dag_defaults import DEFAULT_ARGS, START_DATE, stage_queue, task_timeout


@dag(
    dag_id="exops_publish",
    description="Quality gate (GX), KPI alert emails and the daily ops report",
    schedule=[marts_asset()],
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
    def validate(**context) -> list[dict]:
        from exops.orchestration import days_to_publish, validate_marts

        days = days_to_publish(context["params"], context["triggering_asset_events"])
        return validate_marts(days)

    @task(execution_timeout=task_timeout("publish"), queue=stage_queue("publisher"))
    def publish(validated: list[dict]) -> list[dict]:
        from exops.orchestration import publish_outputs

        return publish_outputs([day["as_of"] for day in validated])

    publish(validate())


exops_publish()
