"""The house drawn from the code's own imports: rooms import downward only, no cycles.

Every import of ``plugins/exops`` is read with ``ast`` (module level and inside functions,
relative ones resolved). A subpackage is one room (``exops.ingest.*`` is ``exops.ingest``), a
top-level module its own unit. Each unit has a layer in :data:`LAYERS`, bottom first; a unit
may import its own layer and those below, never one above, and no two modules or rooms may
import each other in a circle. :mod:`exops.bootstrap` explains why init sits on top.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "plugins" / "exops"

# bottom first: the data's journey (landing -> ingest -> transform -> quality -> publish) on
# top of the pieces every stage shares, and the entry points above them all
LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    ("settings and the landing contract", frozenset({"exops.settings", "exops.contract"})),
    (
        "shared declarations: roles and grants, mail delivery and its templates, the mart"
        " catalogue, Assets, the dbt node list the transform DAG shows",
        frozenset(
            {
                "exops.roles",
                "exops.mail",
                "exops.templating",
                "exops.marts",
                "exops.assets",
                "exops.dbt_nodes",
            }
        ),
    ),
    ("warehouse access", frozenset({"exops.warehouse"})),
    (
        "the at-most-once outbox, notifications and the webhook channel",
        frozenset({"exops.outbox", "exops.notify", "exops.webhook"}),
    ),
    ("landing (the simulator)", frozenset({"exops.simulate"})),
    ("ingest", frozenset({"exops.ingest"})),
    ("transform", frozenset({"exops.transform"})),
    ("metrics: the semantic layer over the marts", frozenset({"exops.metrics"})),
    ("quality", frozenset({"exops.quality"})),
    ("publish", frozenset({"exops.publish"})),
    (
        "entry points: init, the DAG tasks, the command line",
        frozenset(
            {
                "exops.bootstrap",
                "exops.bi",
                "exops.status",
                "exops.orchestration",
                "exops.dag_defaults",
                "exops.airflow_local",
                "exops.airflow_dags_test",
                "exops.pipeline",
                "exops.cli",
            }
        ),
    ),
)


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module
    where: str  # file:line, e.g. plugins/exops/quality/gate.py:27


def modules(package: Path) -> dict[str, Path]:
    """Dotted name -> file of every module of ``package``."""
    root = package.parent
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports(package: Path) -> list[Import]:
    """Every import of one module of ``package`` by another, wherever it is written."""
    known = modules(package)
    found = []
    for name, path in known.items():
        base_package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = base_package.split(".")[
                        : len(base_package.split(".")) - node.level + 1
                    ]
                    base = ".".join([*anchor, base] if base else anchor)
                # `from pkg import module` imports the module, `from pkg import name` pkg
                targets = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
                ]
            for target in targets:
                while target and target not in known:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    where = f"{path.relative_to(package.parents[1])}:{node.lineno}"
                    found.append(Import(name, target, where))
    return found


def unit(module: str) -> str:
    """A room (a subpackage) or a top-level module: ``exops.ingest.audit`` -> ``exops.ingest``."""
    return ".".join(module.split(".")[:2])


def layer_of(name: str) -> int | None:
    for index, (_, units) in enumerate(LAYERS):
        if name in units:
            return index
    return None


def upward_imports(found: list[Import]) -> list[str]:
    problems: list[str] = []
    for imp in found:
        source, target = unit(imp.source), unit(imp.target)
        if source == target:
            continue
        low, high = layer_of(target), layer_of(source)
        if low is not None and high is not None and low > high:
            problem = (
                f"{imp.where}: {imp.source} imports {imp.target}, a layer above it"
                f" ({LAYERS[high][0]} may not import {LAYERS[low][0]})"
            )
            if problem not in problems:  # `from m import a, b` is one import
                problems.append(problem)
    return problems


def cycles(found: list[Import], key=lambda m: m) -> list[str]:
    """Each import cycle once, as ``a -> b -> a`` with the file and line of every arrow."""
    edges: dict[str, dict[str, Import]] = {}
    for imp in found:
        a, b = key(imp.source), key(imp.target)
        if a != b:
            edges.setdefault(a, {}).setdefault(b, imp)
    out, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges.get(node, {})):
            if state.get(nxt) == "open":
                loop = [*stack[stack.index(nxt) :], nxt]
                arrows = [
                    f"{edges[a][b].where} ({a} -> {b})"
                    for a, b in zip(loop, loop[1:], strict=False)
                ]
                out.append(" -> ".join(loop) + ": " + "; ".join(arrows))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return out


@pytest.fixture(scope="module")
def found() -> list[Import]:
    return imports(PACKAGE)


def test_every_room_and_module_has_a_layer() -> None:
    missing = sorted(
        {unit(m) for m in modules(PACKAGE)} - {"exops"} - set().union(*dict(LAYERS).values())
    )
    assert not missing, f"give {', '.join(missing)} a layer in LAYERS (tests/unit/test_layers.py)"


def test_no_room_imports_a_layer_above_it(found) -> None:
    problems = upward_imports(found)
    assert not problems, "imports against the layer order:\n" + "\n".join(problems)


def test_no_import_cycle_between_rooms(found) -> None:
    loops = cycles(found, key=unit)
    assert not loops, "import cycles between rooms:\n" + "\n".join(loops)


def test_no_import_cycle_between_modules(found) -> None:
    loops = cycles(found)
    assert not loops, "import cycles between modules:\n" + "\n".join(loops)


def test_the_walk_names_an_upward_import_and_a_cycle(tmp_path) -> None:
    """The checks themselves: a function-level upward import and a relative cycle are found,
    each named by file, line and modules."""
    package = tmp_path / "exops"
    (package / "quality").mkdir(parents=True)
    (package / "publish").mkdir()
    (package / "__init__.py").write_text("")
    (package / "quality" / "__init__.py").write_text("")
    (package / "quality" / "gate.py").write_text(
        "def notify():\n    from exops.publish.mail import send\n"
    )
    (package / "publish" / "__init__.py").write_text("from .mail import send\n")
    (package / "publish" / "mail.py").write_text("from exops.publish import send\n\nsend = 1\n")
    found = imports(package)
    at = tmp_path.name
    assert upward_imports(found) == [
        f"{at}/exops/quality/gate.py:2: exops.quality.gate imports exops.publish.mail,"
        " a layer above it (quality may not import publish)"
    ]
    assert cycles(found) == [
        "exops.publish -> exops.publish.mail -> exops.publish:"
        f" {at}/exops/publish/__init__.py:1 (exops.publish -> exops.publish.mail);"
        f" {at}/exops/publish/mail.py:1 (exops.publish.mail -> exops.publish)"
    ]


_ROLE_OR_GRANT = re.compile(
    r"(?i)\b(create|alter|drop) role\b|\bgrant\s+[\w, {}]+\s+(on|to)\s"
    r"|\brevoke\s+[\w, {}]+\s+(on|from)\s|\balter default privileges\b"
)


def test_each_role_and_grant_is_made_in_roles_py_only() -> None:
    """No other module (nor a dbt model, macro or hook) creates a role or grants anything."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")) + sorted((PACKAGE.parents[1] / "dags").glob("*.py")):
        if path == PACKAGE / "roles.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if _ROLE_OR_GRANT.search(node.value):
                    offenders.append(f"{path.relative_to(PACKAGE.parents[1])}:{node.lineno}")
    dbt = PACKAGE.parents[1] / "dbt_project"
    for path in sorted(dbt.rglob("*.sql")) + sorted(dbt.rglob("*.yml")):
        if "target" in path.relative_to(dbt).parts or "dbt_packages" in path.parts:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if _ROLE_OR_GRANT.search(line) or re.search(r"^\s*\+?grants\s*:", line):
                offenders.append(f"{path.relative_to(PACKAGE.parents[1])}:{number}")
    assert not offenders, "roles and grants belong to plugins/exops/roles.py: " + ", ".join(
        offenders
    )
