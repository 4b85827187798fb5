"""Build the KPI marts with dbt once every source's raw tables are updated.

Scheduled on the three raw Assets the ingest DAG produces. Task `dbt_build` runs one
`dbt build` (models and data tests; incremental models only redo the days new loads touch)
and holds the marts Asset: a failed model or test fails it, so the marts Asset is not
updated and nothing downstream publishes. Every dbt model then has a task of its own in the
group `dbt`, wired as dbt's lineage: it shows what the build did with that model and its data
tests (time, dbt's message, the failing tests), fails when they failed and is skipped when dbt
did not run the model (all of them, without starting, when nothing new was loaded). Cleared
after a failure, a model's task builds that model and its tests alone. No dbt start-up per
model: the model tasks read the build's results. `dbt_done`, last, carries the run's outcome:
failed when the build or a model task failed.

The model tasks come from the dbt node list that `make install` and every full build (or one
that finds it missing or unusable) write beside dbt's manifest (exops.dbt_nodes), read at
parse time without dbt.
"""

from __future__ import annotations

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import Asset, BaseOperator, TaskGroup, dag, task
from airflow.task.trigger_rule import TriggerRule

from exops import dbt_nodes
from exops.assets import MARTS_ASSET_URI, RAW_ASSET_URIS
from exops.dag_defaults import DEFAULT_ARGS, START_DATE, stage_queue, task_timeout

MODELS, ONE_TASK_WHY = dbt_nodes.read()
DOC = __doc__ + (
    f"\n\n**This parse shows only `dbt_build`**: {ONE_TASK_WHY}." if ONE_TASK_WHY else ""
)


class DbtModel(BaseOperator):
    """The task of one dbt model: what the build did with it (exops.orchestration.report_model).

    A plain operator with no templated fields, not a ``@task``: nothing of it is rendered, so
    a run sends Airflow no rendered fields for each of the many model tasks."""

    template_fields = ()
    ui_color = "#fde8e0"

    def __init__(self, *, model: str, unique_id: str, tests: list[str], **kwargs) -> None:
        super().__init__(**kwargs)
        self.model = model
        self.unique_id = unique_id
        self.tests = tuple(tests)

    def execute(self, context) -> None:
        from exops.orchestration import report_model

        report_model(self.model, self.unique_id, self.tests)


@dag(
    dag_id="exops_transform",
    description="dbt build: staging, intermediate and the KPI marts, a task per model",
    schedule=[Asset(name=f"raw_{s}", uri=uri) for s, uri in RAW_ASSET_URIS.items()],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["exops", "transform", "dbt"],
    doc_md=DOC,
)
def exops_transform():
    @task(
        outlets=[Asset(name="marts", uri=MARTS_ASSET_URI)],
        execution_timeout=task_timeout("transform"),
        queue=stage_queue("transformer"),
    )
    def dbt_build() -> dict:
        from exops.orchestration import build_marts, skip_model_tasks

        result = build_marts()
        if result["nothing_new"] and MODELS:
            # no model ran: the model tasks are skipped without each starting
            skip_model_tasks(result, [f"dbt.{m.name}" for m in MODELS])
        return result

    build = dbt_build()
    if not MODELS:
        return

    with TaskGroup("dbt", tooltip="one task per dbt model, as dbt's lineage"):
        tasks = {
            m.name: DbtModel(
                task_id=m.name,
                model=m.name,
                unique_id=m.unique_id,
                tests=list(m.tests),
                doc_md=f"dbt model `{m.unique_id}`",
                # after the build whatever its outcome, and after the models it reads
                # whatever theirs
                trigger_rule=TriggerRule.ALL_DONE,
                retries=0,  # a model is built again by hand (clear), not behind one's back
                execution_timeout=task_timeout("transform"),
                queue=stage_queue("transformer"),
                do_xcom_push=False,  # what it reports is in its log and state
            )
            for m in MODELS
        }
    for m in MODELS:
        upstream = [tasks[u] for u in m.upstream]
        (upstream or [build]) >> tasks[m.name]
    # the run's outcome: Airflow judges a run by its last tasks, and the model tasks that end
    # the lineage are skipped when dbt skipped them; this one fails when the build or a
    # model task failed (skipped ones pass: nothing new to build)
    read = {u for m in MODELS for u in m.upstream}
    done = EmptyOperator(
        task_id="dbt_done", trigger_rule=TriggerRule.NONE_FAILED, queue=stage_queue("transformer")
    )
    [build, *(tasks[m.name] for m in MODELS if m.name not in read)] >> done


exops_transform()
