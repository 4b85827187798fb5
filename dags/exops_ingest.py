"""Daily ingestion: landing-zone partitions -> raw tables, one task per source.

Each run loads every complete partition up to its data interval's date that is not loaded
yet or was re-delivered (that date is also the run's date: partitions dated later are held
as future), so a rerun or a backfill of any day is safe (already-loaded
partitions with the same checksums are skipped). Each task updates the source's Asset, which
the transform DAG is scheduled on; the Asset event carries the run's day in its `extra`, so
the runs the scheduler starts downstream (which have no date of their own) know which day
they publish.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from exops.assets import RAW_ASSET_URIS, raw_asset
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
    for source in RAW_ASSET_URIS:

        @task(
            task_id=f"ingest_{source}",
            outlets=[raw_asset(source)],
            execution_timeout=task_timeout("ingest"),
            queue=stage_queue("loader"),
        )
        def ingest_source(source: str = source, **context) -> dict:
            from exops.orchestration import ingest_for_interval

            return ingest_for_interval(
                source, context["data_interval_start"], context["outlet_events"]
            )

        ingest_source()


exops_ingest()
