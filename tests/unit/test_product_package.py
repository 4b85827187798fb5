"""Product vs tooling: the image installs what the DAGs and ``exops`` need, nothing more.

Test tooling (the local Airflow cluster) lives in tests/support, benchmarks in bench/;
development dependencies (pytest, ruff, the local SMTP sink's aiosmtpd, the KPI reference's
pandas) are the ``dev`` group, which the Dockerfile's ``uv sync --no-dev`` leaves out.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEV_ONLY = {"pytest", "ruff", "aiosmtpd", "pandas", "httpx"}


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=\[ ;]", r, maxsplit=1)[0].lower() for r in requirements}


def test_dev_tools_are_a_dependency_group_the_image_leaves_out() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    product = _names(project["project"]["dependencies"])
    dev = _names(project["dependency-groups"]["dev"])
    assert {"pytest", "ruff", "aiosmtpd"} <= dev
    assert not product & DEV_ONLY
    syncs = [line for line in (ROOT / "Dockerfile").read_text().splitlines() if "uv sync" in line]
    assert len(syncs) == 2 and all("--no-dev" in line and "--frozen" in line for line in syncs)
    copied = re.findall(r"^COPY (?!--from)(\S+)", (ROOT / "Dockerfile").read_text(), re.M)
    assert "tests" not in copied and "bench" not in copied


def test_no_test_tooling_in_the_product_package() -> None:
    package = ROOT / "plugins" / "exops"
    assert not (package / "distributed.py").exists()
    assert not (package / "ingest" / "benchmark.py").exists()
    offenders = []
    for path in sorted(package.rglob("*.py")) + sorted((ROOT / "dags").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            for name in names:
                top = name.split(".")[0]
                # the local mail sink imports aiosmtpd when started, and says so when missing
                if top in DEV_ONLY and path.name != "mailsink.py":
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {name}")
    assert not offenders, offenders
