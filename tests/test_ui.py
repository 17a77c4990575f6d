"""`regime ui`'s MLflow UI on the home's store: experiments, runs and artifacts are browsable."""

from __future__ import annotations

import socket
import subprocess
import time

import httpx
import pytest

from smallcap_regime.tracking.serving import mlflow_env, ui_command


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ui_lists_the_experiment_and_serves_run_artifacts(trained_home):
    home, result = trained_home
    port = _free_port()
    command = ui_command(home, "127.0.0.1", port)
    assert command[command.index("--host") + 1] == "127.0.0.1"
    proc = subprocess.Popen(command, env=mlflow_env(home), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mlflow ui exited: {proc.stderr.read().decode()[-2000:]}")
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("mlflow ui did not come up within 120 s")
            time.sleep(0.5)
        found = httpx.post(f"{url}/ajax-api/2.0/mlflow/experiments/search", json={"max_results": 50}, timeout=10)
        assert "tiny" in {e["name"] for e in found.json()["experiments"]}
        card = httpx.get(f"{url}/get-artifact", params={"path": "model_card.md", "run_uuid": result.run_id},
                         timeout=10)
        assert card.status_code == 200 and "Out-of-sample results" in card.text
    finally:
        proc.terminate()
        proc.wait(timeout=30)
