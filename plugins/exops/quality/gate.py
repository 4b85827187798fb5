"""The quality gate: run every suite of expectations/ in one ephemeral GX context.

A daily run checks the days new loads touched, ``full=True`` all history
(:mod:`exops.quality.scope`). Results go to ``quality.validation_runs`` (with the window it
checked) / ``quality.validation_results``, and to GX Data Docs under var/quality/data_docs/
when a critical expectation fails, on ``full=True`` or when asked (``exops validate --docs``).
A failed critical expectation raises QualityGateFailed and sends data engineers one
data-quality email per as-of date and set of failures.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg

from exops.quality.builders import CRITICAL, SuiteSpec
from exops.quality.scope import Scope
from exops.settings import PROJECT_ROOT, var_dir
from exops.templating import render

log = logging.getLogger(__name__)

EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"
MAX_EXAMPLES = 5


class QualityGateFailed(RuntimeError):
    def __init__(self, result: ValidationResult):
        self.result = result
        super().__init__(result.summary())


@dataclass
class ExpectationResult:
    suite: str
    expectation: str
    severity: str
    success: bool
    observed: Any = None
    examples: list = field(default_factory=list)


@dataclass
class ValidationResult:
    run_id: str
    as_of: date
    results: list[ExpectationResult]
    scope: Scope | None = None
    data_docs: Path | None = None
    dq_email_sent: bool = False

    @property
    def passed(self) -> bool:
        return not self.critical_failures

    @property
    def critical_failures(self) -> list[ExpectationResult]:
        return [r for r in self.results if not r.success and r.severity == CRITICAL]

    @property
    def warnings(self) -> list[ExpectationResult]:
        return [r for r in self.results if not r.success and r.severity != CRITICAL]

    def summary(self) -> str:
        state = "PASSED" if self.passed else "FAILED"
        checked = f" ({self.scope.describe()})" if self.scope else ""
        lines = [
            f"validation {self.run_id} of as-of {self.as_of}{checked} {state}:"
            f" {len(self.results)} expectations, {len(self.critical_failures)} critical"
            f" failure(s), {len(self.warnings)} warning(s)"
        ]
        for r in self.critical_failures + self.warnings:
            lines.append(
                f"  - [{r.severity}] {r.suite}: {r.expectation}: observed {_short(r.observed)}"
            )
        return "\n".join(lines)


def _short(value: Any, limit: int = 200) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def load_suite_modules(directory: Path = EXPECTATIONS_DIR) -> list[ModuleType]:
    """Import every module of expectations/ by path (the repo root is not on sys.path)."""
    modules = []
    for path in sorted(directory.glob("*.py")):
        if path.name.startswith("_"):
            continue
        spec = importlib.util.spec_from_file_location(f"exops_expectations.{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if not hasattr(module, "suites"):
            raise RuntimeError(f"{path} defines no suites(scope, tables) function")
        modules.append(module)
    return modules


def existing_tables(conn: psycopg.Connection) -> set[str]:
    rows = conn.execute(
        "select table_schema || '.' || table_name from information_schema.tables"
        " where table_schema in ('raw', 'audit', 'staging', 'intermediate', 'marts')"
    ).fetchall()
    return {r[0] for r in rows}


def sqlalchemy_url(url: str) -> str:
    """psycopg 3 through SQLAlchemy; socket-directory URLs (?host=/dir) work unchanged."""
    scheme, rest = url.split("://", 1)
    return f"postgresql+psycopg://{rest}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _exception_message(info: Any) -> str | None:
    if not info:
        return None
    if isinstance(info, dict) and "raised_exception" in info:
        return info.get("exception_message") if info.get("raised_exception") else None
    if isinstance(info, dict):
        for inner in info.values():
            msg = _exception_message(inner)
            if msg:
                return msg
    return None


def _to_result(suite: str, r: Any) -> ExpectationResult:
    meta = r.expectation_config.meta or {}
    name = meta.get("name") or r.expectation_config.description or r.expectation_config.type
    severity = meta.get("severity", CRITICAL)
    res = r.result or {}
    error = _exception_message(r.exception_info)
    if error:
        return ExpectationResult(
            suite, name, severity, False, {"error": error.splitlines()[0][:300]}, []
        )
    details = res.get("details") or {}
    if "unexpected_rows" in details:
        observed: Any = {"unexpected_rows": res.get("observed_value")}
        examples = details["unexpected_rows"][:MAX_EXAMPLES]
    else:
        observed = {
            k: res[k]
            for k in ("observed_value", "element_count", "unexpected_count", "unexpected_percent")
            if k in res and res[k] is not None
        }
        examples = list(res.get("partial_unexpected_list") or [])[:MAX_EXAMPLES]
    return ExpectationResult(
        suite, name, severity, bool(r.success), _jsonable(observed), _jsonable(examples)
    )


def run_suites(
    url: str, specs: list[SuiteSpec], docs_dir: Path, docs: bool = True
) -> list[ExpectationResult]:
    """Run the suites in one checkpoint; render GX Data Docs when ``docs`` is true or a
    critical expectation failed (rendering every suite's page costs seconds, a daily pass
    needs none: its results are in quality.validation_results)."""
    from exops.quality.gx_import import great_expectations

    gx = great_expectations()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    context.add_data_docs_site(
        site_name="exops",
        site_config={
            "class_name": "SiteBuilder",
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(docs_dir),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    # the server's own settings: the transformer's larger work_mem (EXOPS_DBT_WORK_MEM) made
    # the product reconciliation and the raw checks slower at 200,000 users (2.3 s against
    # 1.3 s), PostgreSQL then hashing what it otherwise sorts
    source = context.data_sources.add_sql("warehouse", connection_string=sqlalchemy_url(url))
    definitions = []
    for spec in specs:
        asset = source.add_table_asset(
            f"{spec.schema}.{spec.table}", table_name=spec.table, schema_name=spec.schema
        )
        batch = asset.add_batch_definition_whole_table("whole table")
        suite = context.suites.add(gx.ExpectationSuite(name=spec.name))
        for expectation in spec.expectations:
            suite.add_expectation(expectation)
        definitions.append(
            context.validation_definitions.add(
                gx.ValidationDefinition(name=spec.name, data=batch, suite=suite)
            )
        )
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name="exops_quality_gate",
            validation_definitions=definitions,
            # every rule is a rows query (GX fetches a bounded number of its rows): COMPLETE
            # keeps them, so the data-quality email shows the mismatching rows
            result_format={"result_format": "COMPLETE", "partial_unexpected_count": MAX_EXAMPLES},
        )
    )
    outcome = checkpoint.run()
    results = []
    for validation in outcome.run_results.values():
        suite_name = validation.suite_name
        results.extend(_to_result(suite_name, r) for r in validation.results)
    if docs or any(not r.success and r.severity == CRITICAL for r in results):
        action = gx.checkpoint.UpdateDataDocsAction(name="data_docs", site_names=["exops"])
        action._data_context = context
        action.run(checkpoint_result=outcome)
    return results


def _store(conn: psycopg.Connection, result: ValidationResult, started: datetime) -> None:
    with conn.transaction():
        conn.execute(
            "insert into quality.validation_runs (run_id, as_of, window_start, load_id_ceiling,"
            " passed, expectations, critical_failures, warnings, data_docs, started_at)"
            " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                result.run_id,
                result.as_of,
                result.scope.since if result.scope else None,
                result.scope.load_id_ceiling if result.scope else None,
                result.passed,
                len(result.results),
                len(result.critical_failures),
                len(result.warnings),
                str(result.data_docs) if result.data_docs else None,
                started,
            ),
        )
        with conn.cursor() as cur:
            cur.executemany(
                "insert into quality.validation_results (run_id, as_of, suite, expectation,"
                " severity, success, observed, examples) values (%s, %s, %s, %s, %s, %s, %s, %s)"
                " on conflict do nothing",
                [
                    (
                        result.run_id,
                        result.as_of,
                        r.suite,
                        r.expectation,
                        r.severity,
                        r.success,
                        json.dumps(r.observed, default=str),
                        json.dumps(r.examples, default=str),
                    )
                    for r in result.results
                ],
            )


def _dq_message(result: ValidationResult, sender: str, recipients: list[str], msg_id: str):
    from exops.mail import header_text

    failures = result.critical_failures
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    first = failures[0]
    more = f" (+{len(failures) - 1} more)" if len(failures) > 1 else ""
    msg["Subject"] = header_text(
        f"[exops data quality] {result.as_of}: {first.suite}: {first.expectation}{more}"
    )
    msg["Message-ID"] = msg_id
    context = {
        "run_id": result.run_id,
        "as_of": result.as_of,
        "failures": [
            {
                "suite": r.suite,
                "expectation": r.expectation,
                "observed": _short(r.observed, 500),
                "examples": [_short(x, 300) for x in r.examples],
            }
            for r in failures
        ],
        "warnings": [
            {"suite": r.suite, "expectation": r.expectation, "observed": _short(r.observed)}
            for r in result.warnings
        ],
        "data_docs": str(result.data_docs) if result.data_docs else None,
    }
    msg.set_content(render("data_quality.txt.j2", **context))
    msg.add_alternative(render("data_quality.html.j2", **context), subtype="html")
    return msg


def _notify(conn: psycopg.Connection, result: ValidationResult) -> bool:
    """One data-quality email per as-of date and set of failed critical expectations."""
    from exops.mail import SendError, mail_settings
    from exops.outbox import message_id, send_claimed

    settings = mail_settings()
    recipients = settings.recipients(["data_eng"])
    key = "; ".join(sorted({f"{r.suite}: {r.expectation}" for r in result.critical_failures}))
    msg_id = message_id("dq", result.as_of, key)
    message = _dq_message(result, settings.sender, recipients, msg_id)
    with conn.transaction():
        claimed = conn.execute(
            "insert into quality.dq_notifications (as_of, failure_key, run_id, message_id,"
            " recipients) values (%s, %s, %s, %s, %s)"
            " on conflict (as_of, failure_key) do nothing returning as_of",
            (result.as_of, key, result.run_id, msg_id, ", ".join(recipients)),
        ).fetchone()
    if claimed is None:
        return False
    args = (result.as_of, key)
    try:
        send_claimed(
            conn,
            message,
            settings,
            mark_sent=lambda c: c.execute(
                "update quality.dq_notifications set emailed_at = now()"
                " where as_of = %s and failure_key = %s",
                args,
            ),
            release=lambda c: c.execute(
                "delete from quality.dq_notifications where as_of = %s and failure_key = %s", args
            ),
        )
    except SendError as exc:
        log.error("the data-quality email could not be sent: %s", exc)
        return False
    return True


def validate(
    url: str | None = None,
    as_of: date | None = None,
    full: bool = False,
    docs: bool | None = None,
) -> ValidationResult:
    """Validate marts and raw loads for ``as_of``; raises QualityGateFailed on a critical
    failure (after storing the results and emailing data engineers once).

    Checks the days loads touched since the last passing run, or all history when ``full``
    (or when no run passed yet). GX Data Docs are rendered on a failure, on a full run, or
    when ``docs`` is true (``docs=False``: only on a failure). Runs as the transformer (``url``
    defaults to ``EXOPS_TRANSFORMER_URL``, see :func:`exops.warehouse.stage_url`).
    """
    from exops import warehouse
    from exops.quality import source_health
    from exops.quality.asof import resolve_as_of
    from exops.quality.scope import resolve_scope
    from exops.quality.store import ensure_quality_tables

    url = url or warehouse.stage_url("transformer")
    started = datetime.now(UTC)
    run_id = f"{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    with warehouse.connection(url, autocommit=True) as conn:
        ensure_quality_tables(conn)
        as_of = resolve_as_of(conn, as_of)
        source_health.check_quietly(conn, as_of)
        scope = resolve_scope(conn, as_of, full)
        tables = existing_tables(conn)
        specs: list[SuiteSpec] = []
        for module in load_suite_modules():
            specs.extend(module.suites(scope, tables))
        results: list[ExpectationResult] = []
        runnable = []
        for spec in specs:
            missing = sorted({f"{spec.schema}.{spec.table}", *spec.requires} - tables)
            if not missing:
                runnable.append(spec)
            else:
                results.append(
                    ExpectationResult(
                        spec.name, "table exists", CRITICAL, False, {"missing_table": missing}
                    )
                )
        docs_dir = var_dir() / "quality" / "data_docs"
        docs_dir.mkdir(parents=True, exist_ok=True)
        render = scope.full if docs is None else docs
        if runnable:
            results.extend(run_suites(url, runnable, docs_dir, docs=render))
        index = docs_dir / "index.html"
        rendered = index.exists() and index.stat().st_mtime >= started.timestamp()
        result = ValidationResult(run_id, as_of, results, scope, index if rendered else None)
        _store(conn, result, started)
        log.info(result.summary())
        if not result.passed:
            result.dq_email_sent = _notify(conn, result)
            raise QualityGateFailed(result)
    return result
