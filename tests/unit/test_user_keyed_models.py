"""The user-keyed day models read only what the change window follows by user or for everyone.

Before ``all_users_start`` the user-keyed models (``window_config(..., user_column=...)``)
rebuild only the rows of the window's users (exops.transform.window). That is right only while
every source they read, through every model in between, is one the window follows: by user
(``USER_KEYED``: a late or re-sent record names its users), for every user
(``EVERY_USER_INPUTS``: a price's day or a re-delivery), the users' registrations (``_users``),
the load audit's days, or the window's users themselves. A model made user-keyed, or a new
input of one, must be added to the window's rules first: this test names the gap.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from exops.transform.window import EVERY_USER_INPUTS, USER_KEYED, USER_KEYED_MODELS

FOLLOWED = (
    {f"{s}/{e}" for s, e in USER_KEYED}
    | {f"{s}/{e}" for s, e in EVERY_USER_INPUTS}
    | {"crm/users", "audit/partitions", "transform/window_users"}
)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> dict:
    var = tmp_path_factory.mktemp("var")
    exops = Path(sys.executable).with_name("exops")
    proc = subprocess.run(
        [str(exops), "transform", "--parse"],
        env=dict(os.environ, EXOPS_VAR_DIR=str(var)),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((var / "dbt" / "target" / "manifest.json").read_text())


def _sources(manifest: dict, uid: str, seen: set[str]) -> set[str]:
    out: set[str] = set()
    for dep in manifest["nodes"][uid]["depends_on"]["nodes"]:
        if dep in seen:
            continue
        seen.add(dep)
        if dep.startswith("source."):
            src = manifest["sources"][dep]
            out.add(f"{src['source_name']}/{src['name']}")
        elif dep in manifest["nodes"]:
            out |= _sources(manifest, dep, seen)
    return out


def test_the_user_keyed_models_are_the_ones_the_window_knows(manifest: dict) -> None:
    keyed = {
        node["name"]
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and "user_column=" in node["raw_code"]
    }
    assert keyed == set(USER_KEYED_MODELS)


@pytest.mark.parametrize("model", USER_KEYED_MODELS)
def test_a_user_keyed_model_reads_only_followed_sources(manifest: dict, model: str) -> None:
    read = _sources(manifest, f"model.exops.{model}", set())
    assert "exchange/trades" in read and "transform/window_users" in read
    assert read <= FOLLOWED, (
        f"{model} reads {sorted(read - FOLLOWED)}, which the window does not follow by user"
    )
