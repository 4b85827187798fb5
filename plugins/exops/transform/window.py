"""The change window: what one dbt build must bring up to date, computed once, before dbt starts.

Every build is recorded in ``transform.builds`` with the greatest load id of the load audit it
covers (its ceiling). The next build compares the load audit, and where a rule needs them the
raw rows loaded since, with the last successful build's ceiling, and decides:

- ``full``: rebuild everything (``dbt build --full-refresh``): no successful build yet, the dbt
  project changed since (its code hash), the warehouse still holds the previous design's
  bookkeeping (upgrade in place), or a change that may reach any day (a re-delivered users
  partition: a user's latest version, whose registration can be any day, may be gone; a
  product's quote asset or product line changed);
- ``start``: otherwise the first day the day models rebuild from (through the as-of date,
  since rolling windows carry forward), the least of
  * the earliest ``dt`` of partitions loaded, re-delivered or unloaded (``exops unload``)
    since, minus the late-arrival allowance (a record may be that much older than its
    partition; SOURCES.md);
  * the earliest own date of any version, new or older, of the keys delivered since, for the
    dated entities the day models read (a record older than the rule allows; a trade re-sent
    with another ``executed_at`` leaves its old day);
  * for a re-delivered partition of a staged fact (STAGED_MODELS), the earliest day of the
    versions it had staged and of their other versions in raw (a removed winner lets an older
    version win again);
  * the earliest registration date, old or new, of a new user or one whose ``registered_at``
    moved;
  * the windows of failed builds since the last successful one (what they changed is not
    known to have been built);
- ``nothing``: no load since the last successful build, no failed build since, same code: the
  build has nothing to do.

The user-keyed day models (``USER_KEYED_MODELS``: the user x product x day rollup, the user x
day activity and the tier changes) rebuild every user's rows only from ``all_users_start``, a
later day when the only changes before it are records of users (``USER_KEYED``: trades,
transfers, wealth events, balance snapshots) that
arrived late or were re-sent, or whose registration is new or moved: the on-time day of a
delivered partition, a re-delivered one less the late-arrival allowance, prices and failed
builds reach every user.
Between ``start`` and ``all_users_start`` they rebuild the rows of the users those records (new and
older versions) belong to, from each user's earliest such day, stored for the build in
``transform.window_users`` (a dbt source). A day's ~2% late records then cost their users'
rows, not four whole days of every user's.

Besides the start, the window carries what a few models need to know by key: the staged facts
to restage whole (a partition of theirs was re-delivered), the users whose links (device, IP)
changed (their linked-account alerts are rebuilt over all days), and the campaigns to recompute
by the kind of change (dbt_project/README.md, "Campaigns"): their own record changed (every
day, ``None``: every campaign, e.g. a re-delivered enrollments partition), a user moved into or
out of a country they exclude (only the excluded users' trading), their enrollments changed
(only the enrolled users' trading).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import psycopg

from exops.contract import ENTITY_BY_PATH, Entity
from exops.settings import dbt_project_dir
from exops.warehouse import require_schemas

BUILDS_DDL = (
    """
    create table if not exists transform.builds (
      build_id bigint generated always as identity primary key,
      started_at timestamptz not null default now(),
      finished_at timestamptz,
      status text not null default 'running'
        check (status in ('running', 'success', 'failed', 'nothing')),
      ceiling_load_id bigint not null,
      since_load_id bigint,
      full_refresh boolean not null,
      window_start date,
      as_of_date date,
      code_hash text not null,
      threads integer,
      reasons jsonb not null default '[]'
    )
    """,
    # what the user-keyed day models rebuild for every user, and for how many users before
    "alter table transform.builds add column if not exists all_users_start date",
    "alter table transform.builds add column if not exists window_users integer",
    # the users whose rows the user-keyed day models rebuild before all_users_start (one build's)
    """
    create table if not exists transform.window_users (
      user_id text primary key,
      from_date date not null
    )
    """,
)

# the previous design's bookkeeping (macros/incremental_state.sql, staged_dedup.sql)
LEGACY_STATE_TABLES = ("intermediate.incremental_state", "intermediate.incremental_changes")

# entities whose records' own dates the day models follow, with the staged model that holds
# their winning versions (an incremental table) or None (a view over raw)
DATED_ENTITIES: dict[tuple[str, str], str | None] = {
    ("exchange", "trades"): "staging.stg_exchange__trades",
    ("exchange", "account_balances"): "staging.stg_exchange__account_balances",
    ("exchange", "transfers"): "staging.stg_exchange__transfers",
    ("exchange", "wealth_events"): "staging.stg_exchange__wealth_events",
    ("exchange", "product_events"): None,
    ("exchange", "asset_prices"): None,
    ("crm", "kyc_events"): "staging.stg_crm__kyc_events",
}
# the incrementally staged entities (staged_candidates in macros/dedup.sql): a build stages
# the rows loaded since the last one; a re-delivered partition restages the model whole
STAGED_MODELS = {
    ("exchange", "trades"): "stg_exchange__trades",
    ("exchange", "account_balances"): "stg_exchange__account_balances",
    ("exchange", "transfers"): "stg_exchange__transfers",
    ("exchange", "wealth_events"): "stg_exchange__wealth_events",
    ("crm", "kyc_events"): "stg_crm__kyc_events",
    ("crm", "campaign_enrollments"): "stg_crm__campaign_enrollments",
}
STAGED_DATE_COLUMNS = {
    ("exchange", "trades"): "executed_date",
    ("exchange", "account_balances"): "snapshot_date",
    ("exchange", "transfers"): "created_date",
    ("exchange", "wealth_events"): "event_date",
    ("crm", "kyc_events"): "event_date",
}

# entities whose records belong to users (their user columns), read by the user-keyed day
# models: a late or re-sent record rebuilds only its users' rows there
USER_KEYED: dict[tuple[str, str], tuple[str, ...]] = {
    ("exchange", "trades"): ("maker_user_id", "taker_user_id"),
    ("exchange", "transfers"): ("user_id",),
    ("exchange", "wealth_events"): ("user_id",),
    ("exchange", "account_balances"): ("user_id",),
}
# what else those models read, for every user: the prices of a day (products' quote assets and
# lines, asset prices); the users' registrations are followed by _users
EVERY_USER_INPUTS = {("exchange", "asset_prices"), ("exchange", "products")}
# the models that rebuild by user before all_users_start (macros/change_window.sql, user_column)
USER_KEYED_MODELS = ("int_user_product_daily", "int_user_activity_daily", "int_user_tier_changes")

# the users who moved country a build names to dbt (in its environment); beyond, the campaigns
# excluding their countries are recomputed over all their days
MAX_COUNTRY_MOVERS = 2000

EVERYTHING = date(1900, 1, 1)


@dataclass
class ChangeWindow:
    ceiling: int
    since: int | None
    code_hash: str
    full: bool = False
    start: date | None = None
    users_start: date | None = None
    window_users: int = 0
    as_of: date | None = None
    restage: list[str] = field(default_factory=list)
    relinked_users: list[str] = field(default_factory=list)
    campaigns: list[str] | None = field(default_factory=list)
    country_campaigns: list[str] = field(default_factory=list)
    enrolled_campaigns: list[str] = field(default_factory=list)
    moved_countries: list[str] = field(default_factory=list)
    # the users who moved country (their trading days are what country_campaigns recompute)
    country_movers: list[str] = field(default_factory=list)
    loaded_dates: dict[str, list[str]] = field(default_factory=dict)
    # new or moved registrations: user -> the earliest registration day, old or new
    registrations: dict[str, date] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)

    @property
    def nothing(self) -> bool:
        return not self.full and self.start is None

    def widen(self, day: date, reason: str, every_user: bool = True) -> None:
        """Rebuild from ``day``; in the user-keyed models for every user, or (``every_user``
        false) only for the users of ``window_users`` or not at all (what they do not read)."""
        if self.start is None or day < self.start:
            self.start = day
        if every_user and (self.users_start is None or day < self.users_start):
            self.users_start = day
        scope = "" if every_user else " (user-keyed models: their users only)"
        self.reasons.append(f"{reason}{scope}: from {day.isoformat()}")

    @property
    def all_users_start(self) -> date | None:
        """The first day the user-keyed models rebuild for every user (``start`` at the
        earliest; the day after the as-of date when no change reaches every user)."""
        if self.start is None:
            return None
        later = self.users_start
        if later is None:
            later = (self.as_of + timedelta(days=1)) if self.as_of else self.start
        return max(self.start, later)

    @property
    def keyed(self) -> bool:
        """Whether the user-keyed models rebuild some days for ``window_users`` only."""
        return not self.full and self.start is not None and self.all_users_start > self.start

    def everything(self, reason: str) -> None:
        self.full = True
        self.reasons.append(reason)

    def dbt_vars(self) -> dict:
        """The dbt vars of this window (models read them through macros/change_window.sql)."""
        start = EVERYTHING if self.full or self.start is None else self.start
        keyed = not self.full and self.campaigns is not None  # campaigns rebuilt by key
        if self.nothing and self.as_of is not None:
            start = self.as_of + timedelta(days=1)
        everyone = self.all_users_start if self.keyed else start
        return {
            "window_start": start.isoformat(),
            "all_users_start": everyone.isoformat(),
            "window_start_week": (start - timedelta(days=start.weekday())).isoformat(),
            "window_start_month": start.replace(day=1).isoformat(),
            "since_load_id": -1 if self.full or self.since is None else self.since,
            "ceiling_load_id": self.ceiling,
            "restage": [] if self.full else sorted(self.restage),
            "relinked_users": [] if self.full else sorted(self.relinked_users),
            "rebuild_all_campaigns": not keyed,
            "changed_campaigns": sorted(self.campaigns) if keyed else [],
            "country_campaigns": sorted(self.country_campaigns) if keyed else [],
            # None (every day of those campaigns) when too many to name
            "country_movers": sorted(self.country_movers)
            if keyed and len(self.country_movers) <= MAX_COUNTRY_MOVERS
            else None,
            "enrolled_campaigns": sorted(self.enrolled_campaigns) if keyed else [],
            "loaded_dates": {} if self.full else self.loaded_dates,
            "as_of_date": (self.as_of or start).isoformat(),
        }

    def dbt_env(self) -> dict[str, str]:
        """The window as dbt reads it: one EXOPS_DBT_<NAME> environment variable per value
        (text as is, the rest JSON; macros/change_window.sql). Not --vars: dbt parses the whole
        project again whenever its vars change, a changed variable re-parses only its readers."""
        return {
            f"EXOPS_DBT_{name.upper()}": v if isinstance(v, str) else json.dumps(v, default=str)
            for name, v in self.dbt_vars().items()
        }

    def describe(self) -> str:
        if self.full:
            return "full build: " + "; ".join(self.reasons)
        if self.nothing:
            return "nothing new since the last successful build"
        # the reasons that reach furthest back first
        dated = sorted(self.reasons, key=lambda r: r.rsplit("from ", 1)[-1])
        return (
            f"rebuild from {self.start}: "
            + "; ".join(dated[:3])
            + (f" (+{len(dated) - 3} more)" if len(dated) > 3 else "")
        )


def code_hash(project: Path | None = None) -> str:
    """A hash of what decides the models' output: SQL, YAML and the project file."""
    project = project or dbt_project_dir()
    digest = hashlib.sha256()
    for path in sorted(project.rglob("*")):
        if path.suffix in (".sql", ".yml", ".yaml") and not {
            "target",
            "logs",
            "dbt_packages",
        } & set(path.relative_to(project).parts):
            digest.update(str(path.relative_to(project)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def ensure_builds_table(conn: psycopg.Connection) -> None:
    """``transform.builds`` in the transformer's own schema ``transform`` (made by init)."""
    if conn.execute("select to_regclass('transform.window_users')").fetchone()[0] is None:
        require_schemas(conn, ("transform",))
        with conn.transaction():
            conn.execute("select pg_advisory_xact_lock(hashtext('exops.transform.builds'))")
            for ddl in BUILDS_DDL:
                conn.execute(ddl)


def _exists(conn: psycopg.Connection, relation: str) -> bool:
    return conn.execute("select to_regclass(%s)", (relation,)).fetchone()[0] is not None


def _date_expr(e: Entity, column: str | None = None) -> str:
    column = column or e.event_time
    if e.column(column).type == "date":
        return column
    return f"(({column}) at time zone 'UTC')::date"


def compute(
    conn: psycopg.Connection, late_arrival_days: int, project: Path | None = None
) -> ChangeWindow:
    """The change window of the next build against the warehouse as it is now."""
    ensure_builds_table(conn)
    # one build's users: none until this window says which (a full build reads none)
    conn.execute("truncate transform.window_users")
    if not _exists(conn, "audit.partitions"):
        raise RuntimeError(
            "nothing has been loaded into this warehouse yet: run exops ingest first"
        )
    # load ids and unload ids come from one sequence: the ceiling covers both
    ceiling = conn.execute(
        "select greatest((select max(load_id) from audit.partitions),"
        " (select max(superseded_by) from audit.loads), 0)"
    ).fetchone()[0]
    as_of = conn.execute("select max(partition_date) from audit.partitions").fetchone()[0]
    last = conn.execute(
        "select ceiling_load_id, code_hash from transform.builds"
        " where status in ('success', 'nothing') order by build_id desc limit 1"
    ).fetchone()
    window = ChangeWindow(
        ceiling=ceiling, since=last[0] if last else None, code_hash=code_hash(project), as_of=as_of
    )
    if last is None:
        window.everything("no successful build yet")
        return window
    if any(_exists(conn, t) for t in LEGACY_STATE_TABLES):
        window.everything("upgrade: the warehouse holds the previous incremental design's state")
        return window
    if last[1] != window.code_hash:
        window.everything("the dbt project changed since the last successful build")
        return window
    since = window.since

    for full_refresh, start in conn.execute(
        "select full_refresh, window_start from transform.builds"
        " where status in ('failed', 'running') and ceiling_load_id > 0"
        " and build_id > (select max(build_id) from transform.builds"
        " where status in ('success', 'nothing'))"
    ).fetchall():
        if full_refresh:
            window.everything("a failed full build since the last successful one")
            return window
        if start is not None:
            window.widen(start, "a failed build since the last successful one")

    partitions = conn.execute(
        "select source, entity, partition_date from audit.partitions"
        " where load_id > %s and load_id <= %s",
        (since, ceiling),
    ).fetchall()
    redelivered = {
        (s, e, d)
        for s, e, d in conn.execute(
            "select distinct source, entity, partition_date from audit.loads"
            " where load_id <= %s and superseded_by > %s and superseded_by <= %s",
            (since, since, ceiling),
        ).fetchall()
    }
    if not partitions and not redelivered and window.start is None:
        return window

    by_entity: dict[tuple[str, str], list[date]] = {}
    for s, e, d in partitions:
        by_entity.setdefault((s, e), []).append(d)
    for s, e, _d in redelivered:
        by_entity.setdefault((s, e), [])
    touched = sorted({p[2] for p in partitions} | {d for *_, d in redelivered})
    late = timedelta(days=late_arrival_days)
    if touched:
        window.widen(
            touched[0] - late,
            f"{len(partitions)} partition(s) of dt {touched[0]}..{touched[-1]} loaded"
            f" ({len(redelivered)} re-delivered), less {late_arrival_days} late-arrival days",
            every_user=False,
        )
    # what reaches every user's rows in the user-keyed models: the on-time records of their
    # users' entities (a late one is followed by user: _dated_entity, _window_users); a
    # re-delivery of those or of their other inputs (what it took away is not followed); the
    # prices' own days (_dated_entity), the products' lines and quote assets (_products)
    on_time = sorted(
        d for s, e, d in partitions if (s, e) in USER_KEYED and (s, e, d) not in redelivered
    )
    if on_time:
        window.widen(on_time[0], f"trades, transfers or wealth events of dt {on_time[0]} loaded")
    gone = sorted(d for s, e, d in redelivered if (s, e) in USER_KEYED.keys() | EVERY_USER_INPUTS)
    if gone:
        window.widen(
            gone[0] - late,
            f"a partition of a user-keyed model's input re-delivered or unloaded: dt {gone[0]},"
            f" less {late_arrival_days} late-arrival days",
        )

    for (s, e), dates in by_entity.items():
        if (s, e) in STAGED_MODELS:
            window.loaded_dates[f"{s}_{e}"] = sorted(d.isoformat() for d in dates)
            if any((s, e) == r[:2] for r in redelivered):
                # a re-delivery replaced what its partitions held, and what it took away may
                # have won: restage the entity whole (the days: _dated_entity)
                window.restage.append(STAGED_MODELS[(s, e)])
                window.reasons.append(f"{s}/{e} re-delivered: {STAGED_MODELS[(s, e)]} restaged")
        if (s, e) in DATED_ENTITIES:
            _dated_entity(conn, window, ENTITY_BY_PATH[(s, e)], dates, redelivered)
    if ("crm", "users") in by_entity:
        _users(conn, window, {d for s, e, d in redelivered if (s, e) == ("crm", "users")})
    if ("exchange", "products") in by_entity:
        _products(conn, window)
    if window.full:
        return window
    _campaigns(conn, window, by_entity, redelivered)
    _window_users(conn, window, by_entity)
    return window


# the rows of an entity delivered since the last build (params: the partitions' dates, since)
DELIVERED = "_dt = any(%s) and _load_id > %s"


def _delivered_keys(e: Entity) -> str:
    """The keys of ``e``'s records delivered since the last build (params: dates, since)."""
    return f"select {', '.join(e.key)} from {e.qualified_table} where {DELIVERED}"


def _window_users(
    conn: psycopg.Connection, window: ChangeWindow, by_entity: dict[tuple[str, str], list[date]]
) -> None:
    """Store the users whose rows the user-keyed models rebuild before ``all_users_start``,
    each from their earliest day there: the users of the records of USER_KEYED entities
    delivered since and of their other versions (staged incrementally, or every raw one of
    those read through a view), by each version's own day; the new or re-registered users,
    from their earliest registration day (the rollup counts fees from it)."""
    if not window.keyed:
        return
    parts, params = [], []
    for (s, n), columns in USER_KEYED.items():
        dates = by_entity.get((s, n))
        if not dates:
            continue
        e = ENTITY_BY_PATH[(s, n)]
        key = ", ".join(e.key)
        new_rows = _delivered_keys(e)
        staged = DATED_ENTITIES[(s, n)]
        users = f"unnest(array[{', '.join(columns)}]) as user_id"  # maker and taker: one scan
        if staged is None:
            parts.append(
                f"select {users}, {_date_expr(e)} as day"
                f" from {e.qualified_table} where ({key}) in ({new_rows})"
            )
            params += [dates, window.since]
        else:
            parts.append(
                f"select {users}, {_date_expr(e)} as day from {e.qualified_table} where {DELIVERED}"
            )
            params += [dates, window.since]
            if not _day_in_key(e):  # else a key's every version is on its new version's day
                parts.append(
                    f"select {users}, {STAGED_DATE_COLUMNS[(s, n)]} as day"
                    f" from {staged} where ({key}) in ({new_rows})"
                )
                params += [dates, window.since]
    if window.registrations:
        parts.append("select unnest(%s::text[]) as user_id, unnest(%s::date[]) as day")
        params += [list(window.registrations), list(window.registrations.values())]
    if not parts:
        return
    window.window_users = conn.execute(
        "insert into transform.window_users (user_id, from_date)"
        " select user_id, min(day) from (" + " union all ".join(parts) + ") as versions"
        " where user_id is not null and day >= %s and day < %s group by user_id",
        (*params, window.start, window.all_users_start),
    ).rowcount
    window.reasons.append(
        f"user-keyed models: {window.window_users} user(s) from {window.start},"
        f" every user from {window.all_users_start}"
    )


def _day_in_key(e: Entity) -> bool:
    """Whether a staged entity's day is part of its key (a balance snapshot): then every
    version of a key is on the same day."""
    return e.event_time in e.key and _date_expr(e) == STAGED_DATE_COLUMNS[(e.source, e.name)]


def _widen_from(
    conn: psycopg.Connection,
    window: ChangeWindow,
    sql: str,
    params: tuple,
    reason: str,
    every_user: bool = True,
) -> None:
    """Widen the window to the day ``sql`` returns (one row, one date), if any."""
    day = conn.execute(sql, params).fetchone()[0]
    if day is not None:
        window.widen(day, reason, every_user=every_user)


def _dated_entity(
    conn: psycopg.Connection,
    window: ChangeWindow,
    e: Entity,
    dates: list[date],
    redelivered: set[tuple[str, str, date]],
) -> None:
    """Days of the versions, new and older, of the keys delivered since the last build: for
    every user of the user-keyed models if they read the entity for every user, for their
    users only if its records belong to users (window_users), not at all otherwise."""
    since = window.since
    every_user = (e.source, e.name) in EVERY_USER_INPUTS
    key = ", ".join(e.key)
    staged = DATED_ENTITIES[(e.source, e.name)]
    gone = sorted(d for s, n, d in redelivered if (s, n) == (e.source, e.name))
    new_rows = _delivered_keys(e)
    if staged is None:
        # entities read through a view over raw: every raw version of the keys delivered since
        _widen_from(
            conn,
            window,
            f"select min({_date_expr(e)}) from {e.qualified_table} where ({key}) in ({new_rows})",
            (dates, since),
            f"{e.source}/{e.name} records delivered since, and their other versions",
            every_user=every_user,
        )
        return

    date_column = STAGED_DATE_COLUMNS[(e.source, e.name)]
    _widen_from(
        conn,
        window,
        f"select min({_date_expr(e)}) from {e.qualified_table} where {DELIVERED}",
        (dates, since),
        f"{e.source}/{e.name} records delivered since",
        every_user=every_user,
    )
    if not _exists(conn, staged):
        window.everything(f"{staged} does not exist yet")
        return
    # the staged versions the new ones replace (a re-sent trade leaves its old day); when the
    # day is part of the key (a balance snapshot), a key's every version is on its new
    # version's day, already in the window: no look-up (200,000 index probes a day at large)
    if not _day_in_key(e):
        _widen_from(
            conn,
            window,
            f"select min(staged.{date_column}) from {staged} as staged"
            f" where ({key}) in ({new_rows})",
            (dates, since),
            f"{e.source}/{e.name}: earlier versions of the keys delivered since",
            every_user=every_user,
        )
    if gone:
        # a re-delivery replaced what these partitions held (the entity is restaged whole:
        # compute): the days of what they had staged, and of every other raw version of
        # those keys, rebuild
        _widen_from(
            conn,
            window,
            f"select least("
            f" (select min({date_column}) from {staged} where _dt = any(%s)),"
            f" (select min({_date_expr(e)}) from {e.qualified_table}"
            f"  where ({key}) in (select {key} from {staged} where _dt = any(%s))))",
            (gone, gone),
            f"{e.source}/{e.name} partitions re-delivered: what they had staged",
        )


USER_VERSIONS = """
    select
        user_id, registered_at, device_id, signup_ip, country,
        _load_id > %(since)s as is_new,
        row_number() over (
            partition by user_id, _load_id > %(since)s
            order by updated_at desc, _dt desc, _file desc, _line desc
        ) as recency
    from raw.crm_users
    where _load_id <= %(ceiling)s
        and user_id in (
            select user_id from raw.crm_users
            where _load_id > %(since)s and _load_id <= %(ceiling)s
        )
"""


def _users(conn: psycopg.Connection, window: ChangeWindow, redelivered: set[date]) -> None:
    """Moved registrations, changed links, changed countries of the users delivered since."""
    if redelivered:
        window.everything(
            "a users partition was re-delivered: a user's latest version (registration on any"
            " day) may be gone"
        )
        return
    rows = conn.execute(
        f"""
        with versions as ({USER_VERSIONS})
        select
            new.user_id,
            least(new.registered_at, old.registered_at) as earliest_registered_at,
            old.user_id is null
                or new.registered_at is distinct from old.registered_at as moved,
            old.user_id is null
                or (new.device_id, new.signup_ip) is distinct from (old.device_id, old.signup_ip)
                as relinked,
            old.user_id is not null and new.country is distinct from old.country as moved_country,
            new.country,
            old.country
        from versions as new
        left join versions as old
            on new.user_id = old.user_id and not old.is_new and old.recency = 1
        where new.is_new and new.recency = 1
        """,
        {"since": window.since, "ceiling": window.ceiling},
    ).fetchall()
    from datetime import UTC

    # a registration counts in the user-keyed models for its user only (fees since it)
    window.registrations = {r[0]: r[1].astimezone(UTC).date() for r in rows if r[2]}
    if window.registrations:
        window.widen(
            min(window.registrations.values()),
            f"{len(window.registrations)} new or re-registered user(s)",
            every_user=False,
        )
    window.relinked_users = sorted(r[0] for r in rows if r[3])
    window.moved_countries = sorted({c for r in rows if r[4] for c in r[5:7] if c is not None})
    window.country_movers = sorted(r[0] for r in rows if r[4])


def _products(conn: psycopg.Connection, window: ChangeWindow) -> None:
    changed = conn.execute(
        """
        with versions as (
            select product_id, product_line, quote_asset, _load_id > %(since)s as is_new,
                row_number() over (
                    partition by product_id, _load_id > %(since)s
                    order by _dt desc, _file desc, _line desc
                ) as recency
            from raw.exchange_products
            where _load_id <= %(ceiling)s
        )
        select count(*) from versions as new
        inner join versions as old
            on new.product_id = old.product_id and new.is_new and not old.is_new
            and new.recency = 1 and old.recency = 1
        where (new.product_line, new.quote_asset)
            is distinct from (old.product_line, old.quote_asset)
        """,
        {"since": window.since, "ceiling": window.ceiling},
    ).fetchone()[0]
    if changed:
        window.everything(f"{changed} product(s) changed quote asset or product line")


def _campaigns(
    conn: psycopg.Connection,
    window: ChangeWindow,
    by_entity: dict[tuple[str, str], list[date]],
    redelivered: set[tuple[str, str, date]],
) -> None:
    """Campaigns whose own record changed (window.campaigns), that exclude a country a user
    moved into or out of (window.country_campaigns), whose enrollments changed
    (window.enrolled_campaigns); the others follow the window."""
    if window.campaigns is None:
        return
    if any((s, e) == ("crm", "campaign_enrollments") for s, e, _ in redelivered):
        window.campaigns = None
        window.reasons.append("an enrollments partition was re-delivered: every campaign")
        return

    def delivered(entity: str) -> set[str]:
        dates = by_entity.get(("crm", entity))
        if not dates:
            return set()
        return {
            r[0]
            for r in conn.execute(
                f"select distinct campaign_id from raw.crm_{entity}"
                " where _dt = any(%s) and _load_id > %s",
                (dates, window.since),
            ).fetchall()
        }

    ids = delivered("campaigns")
    countries: set[str] = set()
    if window.moved_countries:
        # a user moving into or out of a country a campaign excludes may join or leave its
        # controls: the campaigns excluding either country, in any version
        countries.update(
            r[0]
            for r in conn.execute(
                "select distinct campaign_id from raw.crm_campaigns"
                " where excluded_countries && %s::text[] and _load_id <= %s",
                (window.moved_countries, window.ceiling),
            ).fetchall()
        )
    window.campaigns = sorted(ids)
    window.country_campaigns = sorted(countries - ids)
    window.enrolled_campaigns = sorted(delivered("campaign_enrollments") - ids)


def drop_legacy_state(conn: psycopg.Connection) -> list[str]:
    """Drop the previous design's bookkeeping tables (the full build that follows replaces
    every incremental table it maintained)."""
    dropped = [t for t in LEGACY_STATE_TABLES if _exists(conn, t)]
    for t in dropped:
        conn.execute(f"drop table {t}")
    return dropped


def record_start(
    conn: psycopg.Connection, window: ChangeWindow, threads: int, runs_dbt: bool = True
) -> int:
    """A build starts: ``running`` until :func:`record_end`, or ``nothing`` for a window
    with nothing new when dbt does not run."""
    return conn.execute(
        "insert into transform.builds (ceiling_load_id, since_load_id, full_refresh,"
        " window_start, all_users_start, window_users, as_of_date, code_hash, threads,"
        " reasons, status) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " returning build_id",
        (
            window.ceiling,
            window.since,
            window.full,
            None if window.full else window.start,
            None if window.full else window.all_users_start,
            window.window_users if window.keyed else None,
            window.as_of,
            window.code_hash,
            threads,
            json.dumps(window.reasons),
            "nothing" if window.nothing and not runs_dbt else "running",
        ),
    ).fetchone()[0]


def record_end(conn: psycopg.Connection, build_id: int, success: bool) -> None:
    conn.execute(
        "update transform.builds set status = %s, finished_at = now()"
        " where build_id = %s and status = 'running'",
        ("success" if success else "failed", build_id),
    )
