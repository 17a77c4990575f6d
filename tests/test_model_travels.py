"""The registered model travels: in a fresh virtualenv holding only the model's ``requirements.txt`` (not this
package), ``mlflow models serve`` of the champion answers its input example exactly as the model does in process.

Slow (it installs MLflow, LightGBM, pandas, ... into a new venv from the package registry); CI runs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest

from smallcap_regime.home import mlflow_uri
from smallcap_regime.tracking import store
from smallcap_regime.tracking.serving import predict_local

from helpers import free_port, wait_until_up

pytestmark = pytest.mark.slow  # a fresh venv and the served model

CHAMPION = "models:/smallcap-regime@champion"


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_champion_served_from_a_venv_with_only_its_requirements(trained_home, tmp_path):
    home, _ = trained_home
    store.configure(home)
    model_dir = Path(mlflow.artifacts.download_artifacts(CHAMPION, dst_path=str(tmp_path / "model")))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "-r", str(model_dir / "requirements.txt")],
                         capture_output=True, text=True, timeout=900)
    assert pip.returncode == 0, pip.stderr[-3000:]
    probe = subprocess.run([str(venv / "bin" / "python"), "-c", "import smallcap_regime"], capture_output=True)
    assert probe.returncode != 0  # the package itself is not there: the model brings its own code

    port = free_port()
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
           "MLFLOW_TRACKING_URI": mlflow_uri(home), "MLFLOW_REGISTRY_URI": mlflow_uri(home),
           "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "VIRTUAL_ENV": str(venv)}
    env.pop("PYTHONPATH", None)
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([str(venv / "bin" / "mlflow"), "models", "serve", "-m", CHAMPION, "--env-manager",
                                 "local", "--host", "127.0.0.1", "--port", str(port)], stdout=out,
                                stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    try:
        wait_until_up(proc, f"http://127.0.0.1:{port}/ping", "mlflow models serve (fresh venv)", timeout_s=300,
                      log=log)
        example = (model_dir / "serving_input_example.json").read_text()
        response = httpx.post(f"http://127.0.0.1:{port}/invocations", content=example,
                              headers={"Content-Type": "application/json"}, timeout=60)
        assert response.status_code == 200, response.text
        served = pd.DataFrame(response.json()["predictions"])
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    split = json.loads(example)["dataframe_split"]
    features = pd.DataFrame(split["data"], columns=split["columns"], dtype="float64")
    local = predict_local(CHAMPION, features)
    numeric = [c for c in local.columns if pd.api.types.is_float_dtype(local[c])]
    np.testing.assert_allclose(served[numeric].to_numpy(), local[numeric].to_numpy(), rtol=0, atol=1e-12)
    assert served.drop(columns=numeric).to_dict("records") == local.drop(columns=numeric).to_dict("records")
