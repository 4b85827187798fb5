"""Build the KPI marts with dbt once every source's raw tables are updated.

Scheduled on the three raw Assets the ingest DAG produces. dbt runs as one coarse
`dbt build` (models and data tests; incremental models only redo the days new
loads touch); a failure fails the task, so the marts Asset is not updated and nothing
downstream publishes.
"""

from __future__ import annotations

from airflow.sdk import Asset, dag, task

from exops.assets import MARTS_ASSET_URI, RAW_ASSET_URIS
from exops.dag_defaults import DEFAULT_ARGS, START_DATE, stage_queue, task_timeout


@dag(
    dag_id="exops_transform",
    description="dbt build: staging, intermediate and the KPI marts",
    schedule=[Asset(name=f"raw_{s}", uri=uri) for s, uri in RAW_ASSET_URIS.items()],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["exops", "transform", "dbt"],
    doc_md=__doc__,
)
def exops_transform():
    @task(
        outlets=[Asset(name="marts", uri=MARTS_ASSET_URI)],
        execution_timeout=task_timeout("transform"),
        queue=stage_queue("transformer"),
    )
    def dbt_build() -> dict:
        from exops.orchestration import build_marts

        return build_marts()

    dbt_build()


exops_transform()
