"""The `airflow dags test` driver behind `exops run --via airflow` (exops.airflow_dags_test):
its in-process execution API serves this Airflow's Task SDK exactly, from fewer versions."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap


def test_in_process_execution_api_serves_the_sdk_version_from_a_trimmed_bundle():
    """In a fresh interpreter (the bundle is module state): the trimmed bundle keeps the
    newest versions, the Task SDK's version is the newest, and the API built from it starts
    (Cadwyn refuses a bundle that drops a route only older versions have) and answers."""
    code = textwrap.dedent(
        """
        import json
        import httpx
        from airflow.api_fastapi.execution_api import versions
        from airflow.sdk.api.datamodels._generated import API_VERSION
        from exops.airflow_dags_test import KEPT_API_VERSIONS, _build_execution_api_for_this_sdk

        before = [v.value for v in versions.bundle.versions]
        _build_execution_api_for_this_sdk()
        after = [v.value for v in versions.bundle.versions]
        from airflow.api_fastapi.execution_api.app import InProcessExecutionAPI
        client = httpx.Client(
            transport=InProcessExecutionAPI().transport, base_url="http://in-process.invalid./"
        )
        health = client.get("/health", headers={"Airflow-API-Version": API_VERSION})
        print(json.dumps({
            "before": before, "after": after, "sdk": API_VERSION, "kept": KEPT_API_VERSIONS,
            "health": health.status_code,
        }))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(got["before"]) > got["kept"] + 1
    assert got["after"] == got["before"][: got["kept"] + 1]
    assert got["after"][0] == got["sdk"]
    assert got["health"] == 200
