"""The whole daily chain for `exops run`: simulate (if needed), then every stage.

`via="airflow"` drives the real DAGs with `airflow dags test` (what `make run` does);
`via="direct"` calls the same exops functions in this process (the benchmark compares both).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

from exops.contract import SOURCES

STAMP_NAME = ".exops-simulation.json"
PIPELINE_DAGS = ("exops_ingest", "exops_transform", "exops_publish")


class PipelineError(RuntimeError):
    pass


@dataclass(frozen=True)
class SimulationArgs:
    users: int
    days: int
    start: str
    seed: int


def ensure_simulated(landing: Path, args: SimulationArgs, progress=None) -> bool:
    """Simulate into ``landing`` unless it already holds this exact simulation. True if written."""
    from exops.simulate import simulate

    stamp = landing / STAMP_NAME
    wanted = asdict(args)
    if stamp.exists() and json.loads(stamp.read_text()) == wanted:
        return False
    if landing.exists() and any(landing.iterdir()) and not stamp.exists():
        raise PipelineError(
            f"{landing} holds a landing zone that exops did not simulate; "
            "pass --landing to use it as is, or choose an empty folder"
        )
    if stamp.exists():
        stamp.unlink()
    simulate(
        landing, args.users, args.days, date.fromisoformat(args.start), args.seed, progress=progress
    )
    stamp.write_text(json.dumps(wanted, indent=2) + "\n")
    return True


_DT = re.compile(r"^dt=(\d{4}-\d{2}-\d{2})$")


def landing_as_of(landing: Path) -> date:
    """The greatest complete partition date in the landing zone."""
    best: date | None = None
    for success in landing.glob("*/*/dt=*/_SUCCESS"):
        m = _DT.match(success.parent.name)
        if m:
            d = date.fromisoformat(m.group(1))
            best = d if best is None or d > best else best
    if best is None:
        raise PipelineError(f"no complete partition (dt=YYYY-MM-DD/_SUCCESS) under {landing}")
    return best


def run_via_airflow(day: date, landing: Path, echo: Callable[[str], None]) -> None:
    """The three DAGs for ``day``, each as `airflow dags test` runs it, in one process. A local
    state without dbt's node list (a new EXOPS_VAR_DIR) gets one first, so that
    ``exops_transform`` shows its model tasks from the first run on."""
    import os

    from exops import dbt_nodes
    from exops.airflow_local import dags_test_chain

    if not dbt_nodes.default_path().is_file():
        from exops.transform import parse

        echo(f"dbt node list: {parse()}")

    env = dict(os.environ)
    env["EXOPS_LANDING_DIR"] = str(landing)
    conf = json.dumps({"as_of": day.isoformat()})
    status, tail = dags_test_chain(
        list(PIPELINE_DAGS), day, env=env, confs={"exops_publish": conf}, echo=echo
    )
    if status != 0 or any("state=failed" in line for line in tail):
        raise PipelineError(f"Airflow run of the daily chain for {day} failed:\n" + "\n".join(tail))


def run_log_path(day: date) -> Path:
    """Where ``exops run --via direct`` keeps the log of a run (var/logs/)."""
    import time

    from exops.settings import var_dir

    folder = var_dir() / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"exops-run-{day}-{time.strftime('%Y%m%dT%H%M%S')}.log"


def run_direct(day: date, landing: Path, echo: Callable[[str], None]) -> None:
    """The same stages as the DAGs, called in this process. A stage that fails is told to
    data engineers as a failed DAG task is (once per business day and stage), with the
    run's log file under var/logs/."""
    import logging
    import os

    from exops import orchestration
    from exops.notify import tell_stage_failure

    os.environ["EXOPS_LANDING_DIR"] = str(landing)
    log_path = run_log_path(day)
    handler = logging.FileHandler(log_path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    steps = [
        (f"ingest {s}", "ingest", lambda s=s: orchestration.ingest_for_interval(s, day))
        for s in SOURCES
    ]
    steps += [
        ("transform", "transform", orchestration.build_marts),
        ("validate", "validate", lambda: orchestration.validate_marts([day.isoformat()])),
        ("publish", "publish", lambda: orchestration.publish_outputs([day.isoformat()])),
    ]
    try:
        for name, stage, step in steps:
            try:
                echo(f"{name}: {step()}")
            except Exception as exc:  # noqa: BLE001 - reported with the stage that failed
                logging.getLogger(__name__).exception("%s failed", name)
                tell_stage_failure(
                    stage, exc, str(log_path), dag_id="exops run", run_id=f"direct__{day}"
                )
                raise PipelineError(f"{name} failed: {exc} (log: {log_path})") from exc
    finally:
        root.removeHandler(handler)
        handler.close()


def kept_mail() -> set[str]:
    """The messages the local sink's folder holds now (before a run: what it did not send)."""
    from exops.publish.mailsink import mail_dir

    return {p.name for p in mail_dir().glob("*.eml")}


def outputs_lines(day: date, earlier: set[str]) -> list[str]:
    """Where the report is and which emails this run sent: the local sink's messages that
    were not there before it (``earlier``, from :func:`kept_mail`). Not by time: a run started
    within a second of the last one's last message would count that message as its own."""
    import email
    from email import policy

    from exops.publish.mailsink import mail_dir
    from exops.settings import var_dir

    lines = []
    report = var_dir() / "reports" / day.isoformat() / "report.html"
    lines.append(f"report: {report}" if report.exists() else f"report: none for {day}")
    sent = sorted(p for p in mail_dir().glob("*.eml") if p.name not in earlier)
    kept = len(list(mail_dir().glob("*.eml")))
    if sent:
        lines.append(f"emails sent by this run: {len(sent)} (in {mail_dir()})")
    else:
        lines.append(
            f"emails sent by this run: 0 (each alert and report is sent once; "
            f"{kept} earlier message(s) in {mail_dir()})"
        )
    for path in sent:
        with path.open("rb") as f:
            msg = email.message_from_binary_file(f, policy=policy.default)
        lines.append(f"  {path.name}: to {msg['To']}: {msg['Subject']}")
    return lines
