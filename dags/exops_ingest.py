"""Daily ingestion: landing-zone partitions -> raw tables, one task per source.

Each run loads every complete partition up to its data interval's date that is not loaded
yet or was re-delivered (that date is also the run's date: partitions dated later are held
as future), so a rerun or a backfill of any day is safe (already-loaded
partitions with the same checksums are skipped). Each task updates the source's Asset, which
the transform DAG is scheduled on.
"""

from __future__ import annotations

from airflow.sdk import Asset, dag, task

from exops.assets import RAW_ASSET_URIS
from exops.dag_defaults import DEFAULT_ARGS, START_DATE, stage_queue, task_timeout


@dag(
    dag_id="exops_ingest",
    description="Load landing-zone partitions into the warehouse raw schema",
    schedule="@daily",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["exops", "ingest", "raw"],
    doc_md=__doc__,
)
def exops_ingest():
    for source, uri in RAW_ASSET_URIS.items():

        @task(
            task_id=f"ingest_{source}",
            outlets=[Asset(name=f"raw_{source}", uri=uri)],
            execution_timeout=task_timeout("ingest"),
            queue=stage_queue("loader"),
        )
        def ingest_source(source: str = source, **context) -> dict:
            from exops.orchestration import ingest_for_interval

            return ingest_for_interval(source, context["data_interval_start"])

        ingest_source()


exops_ingest()
