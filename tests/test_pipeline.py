"""One pipeline: the experiment -> panel -> features path is the same code for backtest, forecast and serving.

An experiment with non-default size legs (quintiles `Lo 20`/`Hi 20` instead of `Lo 30`/`Hi 30`) and its own
registered model name runs on real live files (tests/data/realdata, served from loopback): the feature row the
backtest saw for the last month must be the one `regime predict` sends, and serving must pick that model.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import numpy as np
import pandas as pd
import pytest

from smallcap_regime.dataset import build_dataset
from smallcap_regime.experiment import load_experiment
from smallcap_regime.tracking.serving import mlflow_env
from smallcap_regime.workflow import champion, forecast, train_experiment

from helpers import MODEL_SPEC
from loopback import pull_realdata

pytestmark = pytest.mark.slow  # train, register and serve end to end

CUSTOM = """description = "quintile legs, own model name (test)"
[data]
source = "live"
small_column = "Lo 20"
large_column = "Hi 20"
[features]
spec = "default"
[models]
relative = "{relative}"
absolute = "{absolute}"
[validation]
oos_start = "2000-01"
refit_every_months = 60
embargo_months = 1
calibration_min_obs = 24
[registry]
model_name = "quintile-regime"
"""


@pytest.fixture(scope="module")
def custom(tmp_path_factory, realdata_dir):
    """A live home pulled from loopback, and a trained experiment with custom legs and model name."""
    root = tmp_path_factory.mktemp("pipeline")
    home = root / "home"
    home.mkdir()
    results = pull_realdata(home, realdata_dir)
    assert all(r.ok for r in results if r.key.startswith("french/"))
    paths = {}
    for target, seed in (("relative", 5), ("absolute", 7)):
        paths[target] = root / f"q_{target}.toml"
        paths[target].write_text(MODEL_SPEC.format(target=target, trees=20, learning_rate=0.08, seed=seed,
                                                   seed_clf=seed + 1))
    path = root / "quintiles.toml"
    path.write_text(CUSTOM.format(relative=paths["relative"].as_posix(), absolute=paths["absolute"].as_posix()))
    trained = train_experiment(path, home, force=True)
    return home, path, trained


@pytest.mark.slow
def test_custom_legs_reach_the_panel(custom):
    home, path, trained = custom
    data = build_dataset(load_experiment(path), home=home)
    assert any("'Lo 20'" in note and "'Hi 20'" in note for note in data.panel.notes)
    default = build_dataset(load_experiment("live"), home=home)
    assert not np.allclose(data.panel.frame["small_ret"], default.panel.frame["small_ret"], equal_nan=True)
    pd.testing.assert_frame_equal(trained.backtest.features, data.features)


@pytest.mark.slow
def test_forecast_sends_the_row_the_backtest_saw_to_the_experiments_own_model(custom):
    home, path, trained = custom
    assert trained.model_uri.startswith("models:/quintile-regime/")
    fc = forecast(home, experiment=str(path))
    last = trained.backtest.features.index[-1]
    assert fc.as_of == last
    pd.testing.assert_series_equal(fc.features, trained.backtest.features.loc[last], check_names=False)
    assert fc.model.startswith("models:/quintile-regime/")
    assert champion(home, str(path)).uri == trained.model_uri


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_regime_serve_serves_the_experiments_own_model(custom):
    home, path, trained = custom
    port = _free_port()
    cmd = [sys.executable, "-c", "from smallcap_regime.cli import main; main()", "serve", "--experiment", str(path),
           "--port", str(port), "--home", str(home)]
    proc = subprocess.Popen(cmd, env=mlflow_env(home), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read()
            try:
                if httpx.get(f"{url}/ping", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        remote = forecast(home, experiment=str(path), server=url)
        local = forecast(home, experiment=str(path))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert "models:/quintile-regime/" in out and "champion" in out
    assert remote.output["regime"] == local.output["regime"]
    for column in ("p_outperform", "p_positive", "relative_forecast", "absolute_forecast"):
        assert float(remote.output[column]) == pytest.approx(float(local.output[column]), abs=1e-9)
