"""The `exops` command line: one subcommand per stage of the data's journey, plus `run`."""

from __future__ import annotations

import logging
import os
import sys
import time
from datetime import date
from pathlib import Path

import click

from exops.settings import default_landing_dir

DEFAULT_USERS = 20_000
DEFAULT_DAYS = 90
DEFAULT_START = "2026-08-01"
DEFAULT_SEED = 42


def _stage_ready() -> None:
    """Before a command that connects as a stage: every setting validated, the embedded
    warehouse initialised on first use (exops.bootstrap)."""
    from exops.bootstrap import ensure_embedded
    from exops.settings import SettingError, load_settings

    try:
        load_settings()
    except SettingError as exc:
        raise click.ClickException(str(exc)) from None
    ensure_embedded()


def _parse_date(_ctx, _param, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date in YYYY-MM-DD form") from None


def _echo_progress(label: str):
    """A one-line progress indicator on stderr for work measured in steps."""
    started = time.monotonic()
    interactive = sys.stderr.isatty()

    def report(done: int, total: int) -> None:
        elapsed = time.monotonic() - started
        if not interactive:
            # logs and pipes get a line per tenth, not a redrawn bar
            step = max(1, total // 10)
            if done % step == 0 or done == total:
                click.echo(f"{label}: {done}/{total} ({elapsed:.1f}s)", err=True)
            return
        width = 30
        filled = int(width * done / total) if total else width
        bar = "#" * filled + "-" * (width - filled)
        end = "\n" if done >= total else ""
        click.echo(f"\r{label} [{bar}] {done}/{total}  {elapsed:5.1f}s", nl=False, err=True)
        if end:
            click.echo("", err=True)

    return report


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail to stderr.")
def main(verbose: bool) -> None:
    """exops: the product-operations data platform of an exchange.

    \b
    The data's journey, one subcommand per stage:
      simulate   write a realistic landing zone (exchange, crm, feedback deliveries)
      ingest     load complete landing partitions into the warehouse's raw schema
      unload     take a loaded partition back out of raw (recorded in the audit)
      transform  build the KPI marts with dbt
      health     judge each source's delivery for a day (freshness, volume, schema)
      metrics    query the governed metrics over the marts (MetricFlow, as bi_reader)
      run        all stages, orchestrated by Airflow (what `make run` does)

    \b
    The warehouse is PostgreSQL from EXOPS_WAREHOUSE_URL (the admin, who runs
    `exops warehouse init`); each stage connects as its own role from EXOPS_LOADER_URL,
    EXOPS_TRANSFORMER_URL, EXOPS_PUBLISHER_URL (default: EXOPS_WAREHOUSE_URL). When none is
    set, an embedded PostgreSQL under var/pg is started and initialised on first use
    (see `exops warehouse --help`).
    """
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@main.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Landing-zone root to write [default: var/landing].",
)
@click.option("--users", type=click.IntRange(min=1), default=DEFAULT_USERS, show_default=True)
@click.option("--days", type=click.IntRange(min=1), default=DEFAULT_DAYS, show_default=True)
@click.option(
    "--start",
    default=DEFAULT_START,
    show_default=True,
    callback=_parse_date,
    help="First business date (UTC), YYYY-MM-DD.",
)
@click.option(
    "--seed",
    type=int,
    default=DEFAULT_SEED,
    show_default=True,
    help="Same arguments and seed give byte-identical files.",
)
def simulate(out: Path | None, users: int, days: int, start: date, seed: int) -> None:
    """Write a simulated landing zone that follows shared/spec/SOURCES.md."""
    from exops.simulate import simulate as run_simulation

    out = out or default_landing_dir()
    click.echo(f"simulating {users:,} users x {days} days from {start} (seed {seed}) into {out}")
    started = time.monotonic()
    counts = run_simulation(out, users, days, start, seed, progress=_echo_progress("days"))
    total = sum(counts.values())
    click.echo(f"wrote {total:,} records in {time.monotonic() - started:.1f}s:")
    for name, n in sorted(counts.items()):
        click.echo(f"  {name:<32} {n:>12,}")


@main.group()
def metrics() -> None:
    """The semantic layer: governed metrics over the marts (MetricFlow), read as bi_reader.

    \b
    exops metrics list                       every metric, its grains and dimensions
    exops metrics query --metrics volume_usd --group-by month
    exops metrics query --metrics product_volume_usd --group-by week,product_line \\
        --where "lifecycle_stage = 'cold_start'" --start 2026-08-01 --format csv
    exops metrics query ... --explain        print the SQL (for any BI tool), run nothing

    A query outside a metric's valid grains or dimensions is refused (distinct counts and
    medians exist only at the grain their mart computed them). The connection is bi_reader's:
    EXOPS_BI_READER_URL, else EXOPS_WAREHOUSE_URL's server as bi_reader with
    EXOPS_BI_READER_PASSWORD, else the embedded warehouse.
    """


def _split(values: tuple[str, ...]) -> list[str]:
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


@metrics.command("list")
@click.option("--markdown", is_flag=True, help="The validity table as markdown (for the docs).")
def metrics_list(markdown: bool) -> None:
    """Every metric with its time grains and dimensions (no warehouse needed)."""
    from exops.metrics import MetricsError, SemanticLayer, validity_table_markdown

    try:
        layer = SemanticLayer()
    except MetricsError as exc:
        raise click.ClickException(str(exc)) from None
    infos = layer.metrics()
    if markdown:
        click.echo(validity_table_markdown(infos))
        return
    model = None
    for m in infos:
        if m.semantic_model != model:
            model = m.semantic_model
            click.echo(f"\n{model}")
        v = m.validity
        click.echo(f"  {m.name}  ({m.type}) {m.label}")
        click.echo(f"      grains: {', '.join(v.grains)}")
        if v.dimensions:
            click.echo(f"      dimensions: {', '.join(v.dimensions)}")
        if v.required:
            click.echo(f"      must group by: {', '.join(v.required)}")


@metrics.command("query")
@click.option("--metrics", "names", multiple=True, required=True, help="Metric(s): M[,M].")
@click.option(
    "--group-by",
    "group_by",
    multiple=True,
    help="D[,D]: a grain (day, week, month, quarter, year or metric_time__month) and dimensions"
    " (product_line or product__product_line).",
)
@click.option("--where", default=None, help="A filter on dimensions, e.g. \"tier = 'new'\".")
@click.option("--start", callback=_parse_date, help="First day (metric_time) to include.")
@click.option("--end", callback=_parse_date, help="Last day (metric_time) to include.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv"]),
    default="table",
    show_default=True,
)
@click.option("--explain", is_flag=True, help="Print the SQL instead of running it.")
def metrics_query(names, group_by, where, start, end, fmt, explain) -> None:
    """Query metrics through MetricFlow as bi_reader."""
    from exops.metrics import MetricsError, SemanticLayer, format_csv, format_table
    from exops.warehouse import WarehouseError

    if not explain:
        _stage_ready()
    try:
        with SemanticLayer() as layer:
            args = (_split(names), _split(group_by), where, start, end)
            if explain:
                click.echo(layer.explain(*args))
                return
            result = layer.query(*args)
    except (MetricsError, WarehouseError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(format_csv(result) if fmt == "csv" else format_table(result), nl=fmt != "csv")


@main.group()
def bi() -> None:
    """Apache Superset on the read-only bi_reader role (`make bi`, `make bi-stop`).

    \b
    Settings (environment): EXOPS_BI_PORT (8088, always on 127.0.0.1),
    EXOPS_BI_ADMIN_USER (admin) and EXOPS_BI_ADMIN_PASSWORD, SUPERSET_SECRET_KEY (each
    generated once into var/bi/ when unset), EXOPS_BI_READER_PASSWORD (bi_reader's, for a
    warehouse at EXOPS_WAREHOUSE_URL) or EXOPS_BI_READER_URL.
    """


@bi.command("start")
def bi_start() -> None:
    """Provision Superset (datasets, the dashboards of bi/dashboards/) and start it."""
    from exops import bi as superset

    try:
        started = superset.start()
    except superset.BIError as exc:
        raise click.ClickException(str(exc)) from None
    p = started.provisioned
    state = "was already running (re-provisioned)" if started.already_running else "is up"
    login = (
        f"{started.admin_user} / {started.admin_password}  (generated, kept in"
        " var/bi/admin-password; set EXOPS_BI_ADMIN_PASSWORD to choose one)"
        if started.password_generated
        else f"{started.admin_user} with the password in EXOPS_BI_ADMIN_PASSWORD"
    )
    lines = [
        f"Superset {state}: {started.url}",
        f"  login      {login}",
        f"  dashboard  {started.dashboard_url}",
        f"  data       {p['datasets']} datasets on schema marts as {started.reader_url},"
        f" as-of {started.as_of}",
        "  dashboards "
        + ", ".join(f'"{d["title"]}" ({d["charts"]} charts)' for d in p["dashboards"]),
        "  stop it    make bi-stop",
    ]
    click.echo("\n".join(lines))


@bi.command("stop")
def bi_stop() -> None:
    """Stop the Superset `exops bi start` started."""
    from exops import bi as superset

    click.echo("Superset stopped" if superset.stop() else "Superset was not running")


@main.command()
@click.option(
    "--landing",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Landing-zone root [default: EXOPS_LANDING_DIR or var/landing].",
)
@click.option(
    "--source",
    "sources",
    multiple=True,
    type=click.Choice(["exchange", "crm", "feedback"]),
    help="Only this source (repeatable).",
)
@click.option(
    "--entity", "entities", multiple=True, help="Only this entity, e.g. trades (repeatable)."
)
@click.option(
    "--from", "dt_from", callback=_parse_date, help="Only partitions with dt >= this date."
)
@click.option("--to", "dt_to", callback=_parse_date, help="Only partitions with dt <= this date.")
@click.option(
    "--rehash",
    is_flag=True,
    help="Checksum every loaded partition again, even when its files look untouched.",
)
@click.option(
    "--today",
    callback=_parse_date,
    help="The run's date [default: EXOPS_TODAY, else the clock]; partitions dated more than"
    " EXOPS_MAX_FUTURE_DAYS (1) after it are held as future.",
)
def ingest(landing: Path | None, sources, entities, dt_from, dt_to, rehash, today) -> None:
    """Load every complete (has _SUCCESS) new or re-delivered partition into raw.<source>_<entity>.

    Bad rows go to audit.quarantine with file, line, column and reason; every file gets a row
    in audit.loads. Only regular files beneath the landing root are read (symlinks, FIFOs,
    devices and names that are not UTF-8 are recorded as rejected). Exits 1 if a partition
    could not be loaded at all.
    """
    from exops.ingest import ingest as run_ingest
    from exops.ingest.clock import ClockError

    landing = landing or default_landing_dir()
    if not landing.exists():
        raise click.ClickException(
            f"landing zone {landing} does not exist; run `exops simulate` first"
        )
    _stage_ready()
    try:
        report = run_ingest(
            landing,
            sources=sources or None,
            entities=entities or None,
            dt_from=dt_from,
            dt_to=dt_to,
            rehash=rehash,
            today=today,
            progress=(lambda msg: click.echo(msg, err=True))
            if logging.getLogger().isEnabledFor(logging.DEBUG)
            else _partition_counter(),
        )
    except (ClockError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    for line in _ingest_lines(report):
        click.echo(line)
    if report.failed:
        sys.exit(1)


def _partition_counter():
    """Progress for long loads: partitions finished so far, on stderr."""
    done = 0
    started = time.monotonic()
    interactive = sys.stderr.isatty()

    def count(message: str) -> None:
        nonlocal done
        if message.endswith("file(s)") and ": loading " in message:
            return  # the start of a partition; its result follows
        done += 1
        text = f"ingest: {done} partition(s) done ({time.monotonic() - started:.1f}s)"
        if interactive:
            click.echo(f"\r{text}", nl=False, err=True)
        elif done % 100 == 0:
            click.echo(text, err=True)

    return count


def _ingest_lines(report) -> list[str]:
    """What needs a reader's attention (rejections, quarantines, late partitions), then totals."""
    from exops.ingest.report import mostly_bad_lines

    lines = []
    for p in report.partitions:
        if p.action in ("failed", "incomplete", "future") or p.rows_quarantined or p.rejected_files:
            lines.append(p.describe())
        lines += [f"  rejected {f.path}: {f.error}" for f in p.rejected_files]
    lines += mostly_bad_lines(report.mostly_bad_files)
    if report.quarantine_purged:
        lines.append(f"purged {report.quarantine_purged:,} quarantined row(s) past their retention")
    lines += [f"warning: {w}" for w in report.warnings]
    if report.rows_quarantined:
        lines.append(
            "quarantined rows (file, line, column, reason): select * from audit.quarantine"
        )
    lines.append(report.summary_lines()[-1])
    return lines


@main.command()
@click.option(
    "--source", required=True, type=click.Choice(["exchange", "crm", "feedback"]), help="Source."
)
@click.option("--entity", required=True, help="Entity, e.g. trades.")
@click.option("--dt", "dt", required=True, callback=_parse_date, help="Partition date YYYY-MM-DD.")
@click.option("--note", default=None, help="Why, kept in audit.unloads.")
def unload(source: str, entity: str, dt: date, note: str | None) -> None:
    """Remove a loaded partition's raw rows in one transaction, recorded in the audit.

    Its audit.loads rows stay for history (superseded_by = the unload, superseded_reason =
    'unload'), audit.unloads records it, and the next transform rebuilds from it as after a
    re-delivery. Files still in the landing zone are loaded again by the next ingest (unless
    held as future): remove or fix the delivery first to keep it out.
    """
    from exops.ingest.unload import UnloadError
    from exops.ingest.unload import unload as run_unload

    _stage_ready()
    try:
        click.echo(run_unload(source, entity, dt, note=note).describe())
    except UnloadError as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@click.option("--full-refresh", is_flag=True, help="Rebuild incremental models from scratch.")
@click.option("--select", default=None, help="dbt node selection, e.g. marts.exchange+.")
@click.option(
    "--unit-tests", is_flag=True, help="Also run dbt's unit tests (fixed rows, for development)."
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="dbt threads [default: EXOPS_DBT_THREADS, else the number of cores].",
)
@click.option(
    "--parse",
    "parse_only",
    is_flag=True,
    help="Only parse the project: dbt's manifest and the model list exops_transform shows as"
    " tasks (no warehouse needed; `make install` runs it).",
)
def transform(
    full_refresh: bool,
    select: str | None,
    unit_tests: bool,
    threads: int | None,
    parse_only: bool,
) -> None:
    """Build staging, intermediate and the KPI marts with one `dbt build` (models and tests).

    Only what was loaded since the last successful build is rebuilt (the change window, shown
    first and recorded in transform.builds); with nothing new, dbt does not run.
    """
    from exops.transform import build, headline, parse

    if parse_only:
        click.echo(f"dbt node list: {parse()}")
        return
    _stage_ready()
    result = build(
        full_refresh=full_refresh,
        select=select,
        unit_tests=unit_tests,
        threads=threads,
        progress=lambda m: click.echo(m, err=True),
    )
    click.echo(result.summary())
    if not result.success:
        sys.exit(1)
    for line in _headline_lines(headline()):
        click.echo(line)


def _headline_lines(h: dict) -> list[str]:
    tiers = " · ".join(f"{tier} {n:,}" for tier, n in h["tier_mix"].items())
    return [
        f"as of {h['as_of_date']}: volume ${float(h['volume_usd']):,.2f} · {h['traders']:,} traders"
        f" · {h['trade_count']:,} trades · {h['active_users']:,} active users",
        f"tier mix: {tiers}",
    ]


@main.command()
@click.option("--as-of", "as_of", callback=_parse_date, help="Date to validate [default: latest].")
@click.option(
    "--full",
    is_flag=True,
    help="Audit all history [default: only the days loaded since the last passing run].",
)
@click.option("--docs", is_flag=True, help="Render GX Data Docs even when the gate passes.")
def validate(as_of: date | None, full: bool, docs: bool) -> None:
    """Run the Great Expectations suites; exit 1 if a critical expectation fails.

    A daily run reconciles the days its new loads can change (their partitions, widened by
    the late-arrival window); --full reconciles every day. GX Data Docs are rendered on a
    failure, on a full run, or with --docs.
    """
    from exops.quality import QualityGateFailed
    from exops.quality import validate as run_validation

    _stage_ready()
    try:
        result = run_validation(as_of=as_of, full=full, docs=True if docs else None)
    except QualityGateFailed as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    click.echo(result.summary())
    if result.data_docs:
        click.echo(f"data docs: {result.data_docs}")


@main.command()
@click.option("--as-of", "as_of", callback=_parse_date, help="Date to judge [default: latest].")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Delivery expectations [default: config/source_health.yaml].",
)
def health(as_of: date | None, config_path: Path | None) -> None:
    """Judge each source entity's delivery for the as-of date (and the days before it):
    freshness, volume against the same weekdays, files rejected and unknown columns.

    Judged at the as-of day + 1 at the configured hour, never by the clock; stored in
    audit.source_health (`exops validate` does the same). Exit 1 when a source makes marts
    provisional for the as-of date.
    """
    from exops import warehouse as wh
    from exops.quality import source_health
    from exops.quality.asof import resolve_as_of

    _stage_ready()
    try:
        config = source_health.load_config(config_path)
    except source_health.HealthConfigError as exc:
        raise click.ClickException(str(exc)) from None
    with wh.connection(wh.stage_url("transformer"), autocommit=True) as conn:
        day = resolve_as_of(conn, as_of)
        result = source_health.check(conn, day, config)
    for line in result.summary_lines():
        click.echo(line)
    held = [f for f in result.problems(day) if f.holds]
    for mart in sorted({m for f in held for m in f.affected_marts or ("(every mart)",)}):
        click.echo(f"  provisional: {mart}")
    if held:
        sys.exit(1)


@main.command()
@click.option("--as-of", "as_of", callback=_parse_date, help="Date to report [default: latest].")
def publish(as_of: date | None) -> None:
    """Send the KPI alerts and the daily ops report (only after validation passed).

    Data engineers are told (once) when the latest day loaded has no report
    EXOPS_PUBLISH_DEADLINE_HOURS (30) after its end.
    """
    from exops.notify import check_publish_deadline_quietly
    from exops.publish import PublishRefused
    from exops.publish import publish as run_publish

    _stage_ready()
    check_publish_deadline_quietly()
    try:
        result = run_publish(as_of=as_of)
    except PublishRefused as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(result.summary())
    if result.errors:
        sys.exit(1)


@main.group()
def alerts() -> None:
    """The KPI alert rules of config/alert_rules.yaml."""


@alerts.command("backtest")
@click.option("--rule", "names", multiple=True, help="Only this rule (repeatable).")
@click.option("--from", "first", required=True, callback=_parse_date, help="First day.")
@click.option("--to", "last", required=True, callback=_parse_date, help="Last day.")
def alerts_backtest(names: tuple[str, ...], first: date, last: date) -> None:
    """Replay the rules over the marts' history and print, per rule, the days it would have
    fired and its rate per 90 days. Sends nothing, writes nothing."""
    from exops import warehouse
    from exops.publish.backtest import backtest
    from exops.publish.baseline import load_incidents
    from exops.publish.rules import RuleFileError, load_rules

    _stage_ready()
    try:
        rules = load_rules()
    except RuleFileError as exc:
        raise click.ClickException(str(exc)) from None
    unknown = sorted(set(names) - {r.name for r in rules})
    if unknown:
        known = ", ".join(r.name for r in rules)
        raise click.ClickException(f"no rule named {', '.join(unknown)}; rules: {known}")
    chosen = [r for r in rules if not names or r.name in names]
    if last < first:
        raise click.ClickException(f"--to {last} is before --from {first}")
    with warehouse.connection(warehouse.stage_url("publisher"), autocommit=True) as conn:
        results = backtest(conn, chosen, first, last, load_incidents())
    click.echo(f"backtest {first} .. {last} ({(last - first).days + 1} days), nothing sent")
    for result in results:
        for line in result.lines():
            click.echo(line)


@main.command("mail-sink")
@click.option("--port", type=int, default=None, help="Port on 127.0.0.1 [default: 8025].")
def mail_sink(port: int | None) -> None:
    """A local SMTP server that stores every message as a .eml file under var/mail/."""
    from exops.publish.mailsink import LOCAL_PORT, serve

    serve(port or LOCAL_PORT)


@main.command()
def docs() -> None:
    """Generate the dbt docs site under var/dbt/docs."""
    from exops.transform import docs as build_docs

    _stage_ready()
    click.echo(f"dbt docs: {build_docs()}/index.html")


@main.command()
def status() -> None:
    """What the warehouse holds: rows loaded and quarantined per entity, the as-of date."""
    from exops.status import load_summary_lines

    for line in load_summary_lines():
        click.echo(line)


@main.group()
def warehouse() -> None:
    """The warehouse: its admin connection (EXOPS_WAREHOUSE_URL, or the embedded PostgreSQL)."""


@warehouse.command("url")
def warehouse_url_cmd() -> None:
    """Print the warehouse URL (starting the embedded server if needed), password hidden."""
    from exops import warehouse as wh

    click.echo(wh.describe(wh.warehouse_url()))


_STAGE_PASSWORDS = "EXOPS_LOADER_PASSWORD, EXOPS_TRANSFORMER_PASSWORD, EXOPS_PUBLISHER_PASSWORD"


@warehouse.command("init")
@click.option(
    "--stage-passwords-from-env",
    is_flag=True,
    help=f"Set the stage roles' passwords from {_STAGE_PASSWORDS} (or their _FILE).",
)
@click.option(
    "--bi-reader-password-from-env",
    is_flag=True,
    help="Set bi_reader's password from EXOPS_BI_READER_PASSWORD (or its _FILE).",
)
def warehouse_init(stage_passwords_from_env: bool, bi_reader_password_from_env: bool) -> None:
    """Create the schemas, the least-privilege roles and their grants (idempotent).

    Run once per warehouse database, connected with EXOPS_WAREHOUSE_URL as an admin that
    owns the database and has CREATEROLE (no superuser needed). Passwords change only when
    asked for.

    \b
    exops_loader       writes raw and audit (ingest)
    exops_transformer  reads raw and the load audit; writes staging, intermediate, marts,
                       transform, quality (dbt and the quality gate)
    exops_publisher    reads marts and quality; writes publish (alerts, report)
    bi_reader          reads marts only
    """
    from exops.bootstrap import init_warehouse
    from exops.roles import RoleError

    try:
        states = init_warehouse(
            stage_passwords=stage_passwords_from_env,
            bi_reader_password=bi_reader_password_from_env,
        )
    except RoleError as exc:
        raise click.ClickException(str(exc)) from None
    for state in states:
        click.echo(state.describe())


@warehouse.command("stop")
def warehouse_stop() -> None:
    """Stop the embedded PostgreSQL (no effect on a configured warehouse)."""
    from exops import warehouse as wh

    click.echo("stopped" if wh.stop_embedded() else "the embedded warehouse was not running")


@main.command()
@click.option(
    "--landing",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Use this landing zone as is (no simulation) [default: simulate into var/landing].",
)
@click.option("--users", type=click.IntRange(min=1), default=DEFAULT_USERS, show_default=True)
@click.option("--days", type=click.IntRange(min=1), default=DEFAULT_DAYS, show_default=True)
@click.option("--start", default=DEFAULT_START, show_default=True, callback=_parse_date)
@click.option("--seed", type=int, default=DEFAULT_SEED, show_default=True)
@click.option(
    "--date",
    "day",
    callback=_parse_date,
    help="Business date to run for [default: the latest complete partition].",
)
@click.option(
    "--via",
    type=click.Choice(["airflow", "direct"]),
    default="airflow",
    show_default=True,
    help="airflow: the real DAGs via `airflow dags test`; direct: same stages in-process.",
)
def run(landing, users, days, start, seed, day, via) -> None:
    """Run the whole pipeline: simulate (unless --landing), then every stage for one day.

    Re-running is cheap and safe: the simulation is reused when its arguments are unchanged,
    and partitions already loaded are not loaded again.
    """
    from exops import pipeline
    from exops.settings import load_settings

    _stage_ready()
    if landing is None:
        landing = default_landing_dir()
        args = pipeline.SimulationArgs(users=users, days=days, start=start.isoformat(), seed=seed)
        try:
            wrote = pipeline.ensure_simulated(landing, args, progress=_echo_progress("simulating"))
        except pipeline.PipelineError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(
            f"landing zone: {landing} "
            + ("(simulated now)" if wrote else "(reused: same simulation arguments)")
        )
    elif not landing.exists():
        raise click.ClickException(f"landing zone {landing} does not exist")
    if day is None and load_settings().today is None:
        from exops.contract import read_landing_clock

        clock = read_landing_clock(landing)
        if clock is not None:  # a simulated landing zone: its own clock is the run's date
            os.environ["EXOPS_TODAY"] = clock.isoformat()
    stop_sink = _ensure_mail_server()
    try:
        day = day or pipeline.landing_as_of(landing)
        started = time.monotonic()
        earlier_mail = pipeline.kept_mail()
        runner = pipeline.run_via_airflow if via == "airflow" else pipeline.run_direct
        runner(day, landing, click.echo)
    except pipeline.PipelineError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        if stop_sink is not None:
            stop_sink()
    click.echo(f"pipeline for {day} finished in {time.monotonic() - started:.1f}s ({via})")
    from exops.status import load_summary_lines
    from exops.transform import headline

    click.echo("")
    for line in load_summary_lines():
        click.echo(line)
    click.echo("")
    for line in _headline_lines(headline()):
        click.echo(line)
    click.echo("")
    for line in pipeline.outputs_lines(day, earlier=earlier_mail):
        click.echo(line)


def _ensure_mail_server():
    """Without EXOPS_SMTP_HOST, start the local sink (mail lands in var/mail/ as .eml)."""
    from exops.settings import load_settings

    if load_settings().smtp_host:
        return None
    from exops.publish.mailsink import mail_dir, start_sink

    # the mail settings send to the local sink (127.0.0.1) while EXOPS_SMTP_HOST is unset
    host, port, stop = start_sink()
    os.environ["EXOPS_SMTP_PORT"] = str(port)
    click.echo(f"mail: no EXOPS_SMTP_HOST set, so a local SMTP sink on {host}:{port} keeps every")
    click.echo(f"      message as a .eml file in {mail_dir()}")
    return stop
