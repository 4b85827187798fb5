"""The dbt models ``exops_transform`` shows as tasks: a compact node list kept beside dbt's
manifest, light enough to read while the DAG file is parsed.

dbt writes ``manifest.json`` (megabytes) on every full build and on ``exops transform parse``
(which ``make install`` runs); a day's build leaves it (it changes only with the code, which
makes a build full). After those, :func:`write_from_manifest` keeps only
what the DAG needs: each model's name, the models it reads and its data tests, and
the relation it builds (a day's build checks they all exist: exops.transform). The DAG file
reads it with :func:`read`, which never raises: a missing or unreadable list gives no models
and the reason, and the DAG falls back to its one ``dbt_build`` task and says why in its docs.
Light: json and pathlib only (no dbt, no psycopg), imported at DAG parse time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

FILE_NAME = "dbt_nodes.json"
FORMAT = 2


@dataclass(frozen=True)
class Model:
    name: str
    unique_id: str
    upstream: tuple[str, ...]  # the names of the models it reads (ref), in the list
    tests: tuple[str, ...]  # unique ids of its data tests (tests on one model only)
    relation: str = ""  # schema.name of the relation dbt builds (none: ephemeral)


def default_path() -> Path:
    """``<EXOPS_VAR_DIR or ./var>/dbt/dbt_nodes.json``, without creating anything (parse time)."""
    from exops.settings import PROJECT_ROOT, at_parse_time

    base = at_parse_time("var_dir") or PROJECT_ROOT / "var"
    return Path(base).resolve() / "dbt" / FILE_NAME


def write_from_manifest(manifest: Path, path: Path | None = None) -> list[Model]:
    """The models of dbt's ``manifest`` (enabled, this project's) with their upstream models
    and single-model data tests, written to ``path`` (atomically); returns them."""
    data = json.loads(manifest.read_text(encoding="utf-8"))
    nodes = data["nodes"]
    models = {
        uid: node
        for uid, node in nodes.items()
        if node.get("resource_type") == "model" and node.get("config", {}).get("enabled", True)
    }
    tests: dict[str, list[str]] = {uid: [] for uid in models}
    for uid, node in nodes.items():
        if node.get("resource_type") != "test":
            continue
        read = [d for d in node.get("depends_on", {}).get("nodes", []) if d in models]
        attached = node.get("attached_node") or (read[0] if len(read) == 1 else None)
        if attached in tests:
            tests[attached].append(uid)
    out = [
        Model(
            name=node["name"],
            unique_id=uid,
            upstream=tuple(
                sorted(
                    models[d]["name"]
                    for d in set(node.get("depends_on", {}).get("nodes", []))
                    if d in models
                )
            ),
            tests=tuple(sorted(tests[uid])),
            relation=_relation(node),
        )
        for uid, node in sorted(models.items(), key=lambda kv: kv[1]["name"])
    ]
    path = path or default_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {
        "format": FORMAT,
        "dbt_version": data.get("metadata", {}).get("dbt_version"),
        "models": [
            {
                "name": m.name,
                "unique_id": m.unique_id,
                "upstream": m.upstream,
                "tests": m.tests,
                "relation": m.relation,
            }
            for m in out
        ],
    }
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")
    partial.replace(path)
    return out


def _relation(node: dict) -> str:
    if node.get("config", {}).get("materialized") == "ephemeral":
        return ""
    return f"{node['schema']}.{node.get('alias') or node['name']}"


def read(path: Path | None = None) -> tuple[list[Model], str | None]:
    """The node list's models, or none and why (never raises: it runs at DAG parse time)."""
    path = path or default_path()
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        if body.get("format") != FORMAT:
            return [], f"{path} has format {body.get('format')!r}, this exops reads {FORMAT}"
        models = [
            Model(m["name"], m["unique_id"], tuple(m["upstream"]), tuple(m["tests"]), m["relation"])
            for m in body["models"]
        ]
    except FileNotFoundError:
        return [], f"no dbt node list at {path} (`make install` or a first build writes it)"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return [], f"the dbt node list {path} cannot be read ({type(exc).__name__}: {exc})"
    names = {m.name for m in models}
    unknown = sorted({u for m in models for u in m.upstream} - names)
    if not models or unknown:
        why = "it lists no model" if not models else f"it names unknown models {unknown}"
        return [], f"the dbt node list {path} is not usable: {why}"
    return models, None
