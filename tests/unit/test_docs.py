"""The docs hold no benchmark figures and no machine's paths.

Measured figures (seconds, memory, rows/s, speed-ups) live in bench/RESULTS.md, each behind a
committed JSON under bench/results/ or marked as having none; READMEs and docs/ only point
there, so a sentence cannot go stale when the code gets faster or slower. Paths of one
machine (a home or checkout directory) mean nothing on a fresh clone.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SKIP_DIRS = {".git", ".venv", ".venv-bi", "var", "node_modules", "__pycache__", "results"}

# a measured quantity: a time, a size, a rate or a speed-up (setting values such as
# `max_wal_size` `8GB` are written as code and not looked at)
FIGURE = re.compile(
    r"(?<![\w.])~?\d+(?:[.,]\d+)*\s?"
    r"(?:ms|s|secs?|seconds?|mins?|minutes?|hours?|MB|GB|KB|MiB|GiB|rows/s)(?![\w/])"
    r"|\b\d+(?:\.\d+)?\s?[x×]\s+(?:faster|slower)\b"
    r"|\btimes (?:faster|slower)\b",
    re.IGNORECASE,
)
# an absolute path into one machine's home or checkout (not /run/secrets, /var/lib/..., which
# are the same on every host); written without the slashes together so this file passes too
MACHINE_PATH = re.compile(r"(?<![\w.$}\-])/" + r"(?:work|root|home|Users)/")
TMP_PATH = re.compile(r"(?<![\w.$}\-])/" + r"tmp/")
# limits of other systems, not measurements of exops: (file, figure) -> why it may stay
NOT_FIGURES = {
    ("plugins/exops/templates/README.md", "~100 kB"): "Gmail clips longer messages",
}
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
CODE = re.compile(r"`[^`\n]*`")


def _files(suffixes: tuple[str, ...], names: tuple[str, ...] = ()) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
        out += [Path(dirpath, f) for f in filenames if Path(f).suffix in suffixes or f in names]
    return sorted(out)


def _docs() -> list[Path]:
    """Every README and every page of docs/ (bench/RESULTS.md is where figures belong)."""
    return [
        p
        for p in _files((".md", ".rst", ".txt"))
        if p.name.upper().startswith("README") or p.relative_to(ROOT).parts[0] == "docs"
    ]


def _prose(text: str) -> str:
    """The text without code blocks and code spans (commands, setting values, names)."""
    return CODE.sub("``", FENCE.sub("", text))


def test_the_docs_are_found() -> None:
    found = {p.relative_to(ROOT).as_posix() for p in _docs()}
    assert {"README.md", "bench/README.md", "dbt_project/README.md", "docs/settings.md"} <= found
    assert "bench/RESULTS.md" not in found


@pytest.mark.parametrize(
    "sentence",
    [
        "make run takes about 4 minutes on a 2-core laptop",
        "it checkpoints every ~25 s",
        "ingest is 8.6x faster than pandas",
        "peak RSS 141 MB",
        "129,613 rows/s",
    ],
)
def test_the_figure_pattern_catches_figures(sentence: str) -> None:
    assert FIGURE.search(_prose(sentence))


def test_the_figure_pattern_leaves_settings_and_counts() -> None:
    prose = _prose(
        "the 14 marts, 20,000 users x 90 days, the 7 days before, `max_wal_size` `8GB`,"
        " PostgreSQL 16, cut to 4 KiB, 2026-08-01, on 4 threads\n```\nmake run  # 4 minutes\n```"
    )
    assert not FIGURE.search(prose), FIGURE.search(prose)


def test_no_benchmark_figures_outside_bench_results() -> None:
    found = []
    for path in _docs():
        for line in _prose(path.read_text()).splitlines():
            found += [
                f"{path.relative_to(ROOT)}: {m.group(0)!r} in {line.strip()!r}"
                for m in FIGURE.finditer(line)
                if (path.relative_to(ROOT).as_posix(), m.group(0)) not in NOT_FIGURES
            ]
    assert not found, "figures belong in bench/RESULTS.md:\n" + "\n".join(found)


def test_no_machine_paths_in_docs_code_or_tests() -> None:
    texts = _files(
        (".md", ".py", ".sql", ".yml", ".yaml", ".toml", ".j2", ".cfg", ".ini"),
        ("Makefile", "Dockerfile", "run", ".sqlfluff"),
    )
    assert any(p.name == "test_docs.py" for p in texts)
    docs = set(_docs())
    found = []
    for path in texts:
        text = path.read_text(errors="replace")
        patterns = [MACHINE_PATH] + ([TMP_PATH] if path in docs else [])
        for pattern in patterns:
            for m in pattern.finditer(text):
                line = text[: m.start()].count("\n") + 1
                found.append(f"{path.relative_to(ROOT)}:{line}")
    assert not found, "paths of one machine: " + ", ".join(found)
