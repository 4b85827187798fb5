"""What the warehouse holds, from the load audit: for `exops status` and the end of `exops run`."""

from __future__ import annotations

from exops import warehouse

_PER_ENTITY = """
select p.source, p.entity, count(*) as partitions, min(p.partition_date), max(p.partition_date),
       sum(p.rows_loaded), sum(p.rows_quarantined), sum(p.files_rejected)
from audit.partitions p
group by 1, 2
order by 1, 2
"""


def load_summary_lines(url: str | None = None) -> list[str]:
    with warehouse.connection(url) as conn:
        exists = conn.execute("select to_regclass('audit.partitions') is not null").fetchone()[0]
        if not exists:
            return ["the warehouse holds nothing yet: run `exops ingest` or `exops run`"]
        rows = conn.execute(_PER_ENTITY).fetchall()
        pending, future = conn.execute(
            "select count(*) filter (where status = 'incomplete'),"
            " count(*) filter (where status = 'future') from audit.pending_partitions"
            " where (source, entity, partition_date) not in"
            " (select source, entity, partition_date from audit.partitions)"
        ).fetchone()
    if not rows:
        return ["no partition is loaded yet"]
    lines = [
        f"warehouse {warehouse.describe(warehouse.warehouse_url() if url is None else url)}",
        f"{'source/entity':<32}{'partitions':>11}{'rows loaded':>14}{'quarantined':>13}"
        f"{'files rejected':>16}  dates",
    ]
    total_loaded = total_quarantined = 0
    first = last = None
    for source, entity, parts, lo, hi, loaded, quarantined, rejected in rows:
        lines.append(
            f"{source + '/' + entity:<32}{parts:>11,}{loaded:>14,}{quarantined:>13,}"
            f"{rejected:>16,}  {lo}..{hi}"
        )
        total_loaded += loaded
        total_quarantined += quarantined
        first = lo if first is None or lo < first else first
        last = hi if last is None or hi > last else last
    lines.append(
        f"{'total':<32}{'':>11}{total_loaded:>14,}{total_quarantined:>13,}"
        f"{'':>16}  first day {first}, as-of {last}"
    )
    if total_quarantined:
        lines.append("quarantined rows, with file, line and reason: select * from audit.quarantine")
    if pending:
        lines.append(
            f"{pending} partition(s) still without _SUCCESS (late): audit.pending_partitions"
        )
    if future:
        lines.append(
            f"{future} partition(s) dated in the future, held until their day:"
            " audit.pending_partitions where status = 'future'"
        )
    return lines
