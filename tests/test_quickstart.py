"""The README's main job, end to end, in a temporary home with no network."""

from __future__ import annotations

import re
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from smallcap_regime.cli import app
from smallcap_regime.models.regime import REGIMES
from smallcap_regime.tracking import store

pytestmark = pytest.mark.slow  # the quickstart experiment end to end


def test_quickstart_runs_offline_end_to_end(home, monkeypatch):
    # any attempt to reach the network would fail loudly
    for source in ("FRENCH", "FRED", "FINRA"):
        monkeypatch.setenv(f"REGIME_{source}_URL", "http://127.0.0.1:9")
    result = CliRunner().invoke(app, ["quickstart", "--home", str(home)], terminal_width=200)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "offline sample" in out and "ends 2017-03" in out
    assert "relative: point forecasts" in out and "absolute: probabilities" in out
    assert re.search(r"registered models:/smallcap-regime/1", out)
    regime = re.search(r"regime: (.+?) \(", out).group(1)
    assert regime in REGIMES
    assert "forecast made at 2017-03-31 for 2017-04..2017-06" in out
    # the forecast comes before the long tables, and the offline-sample note is said once
    assert out.index("forecast made at") < out.index("relative: point forecasts")
    assert out.count("offline sample") == 1
    # the base rate never leaves the long side; the calibrated models (anchored map: not flat) do, now and then
    assert "absolute: hist_mean held the same position as buy-and-hold in every quarter" in " ".join(out.split())
    assert "regime ui" in out
    report = re.search(r"the report \(.*\): (/\S+/report\.html)", out).group(1)  # a file to open
    assert Path(report).is_file() and report.startswith(str(home))
    assert re.search(r"^report: /\S+/report\.html$", out, re.M)  # train says it too
    # MLflow store in the home: the experiment, its runs and the registered model
    store.configure(home)
    experiment = mlflow.get_experiment_by_name("quickstart")
    runs = mlflow.search_runs([experiment.experiment_id], output_format="list")
    assert {r.info.run_name for r in runs} == {"train quickstart", "backtest", "relative models", "absolute models"}
    assert MlflowClient().get_registered_model("smallcap-regime").name == "smallcap-regime"
    assert (home / "mlflow.db").exists() and (home / "mlartifacts" / "quickstart").is_dir()
