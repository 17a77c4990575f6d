"""`regime monitor`: drift against the training data, the live record since promotion, logged to MLflow on the model
version; `regime predict` warns when drift is high."""

from __future__ import annotations

import copy
import io
import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from smallcap_regime.cli import app
from smallcap_regime.evaluation import drift as drift_module
from smallcap_regime.evaluation.drift import feature_drift, psi
from smallcap_regime.monitor import monitor

ENV = {"COLUMNS": "80", "NO_COLOR": "1", "TERM": "dumb"}


def test_psi_is_near_zero_for_the_same_distribution_and_large_for_a_shift():
    rng = np.random.default_rng(1)
    train = rng.normal(0, 1, 5000)
    assert psi(train, rng.normal(0, 1, 5000)) < 0.01
    assert psi(train, rng.normal(2, 1, 200)) > 1.0
    assert np.isnan(psi(train, np.array([np.nan])))


def test_feature_drift_counts_features_outside_the_training_range():
    # SYNTHETIC features (unit test only)
    index = pd.date_range("2000-01-31", periods=60, freq="ME")
    frame = pd.DataFrame({"a": np.arange(60.0), "b": np.linspace(0, 1, 60), "c": 1.0, "d": np.nan}, index=index)
    train = frame.iloc[:48]
    frame.iloc[-1, frame.columns.get_loc("b")] = 0.5  # inside
    drift = feature_drift(frame, train, {"a": "x", "b": "x", "c": "y", "d": "y"})
    assert drift.outside.index.tolist() == ["a"] and drift.outside.loc["a", "train_max"] == 47.0
    assert drift.share_outside == pytest.approx(1 / 3)  # d is unknown: not counted
    assert drift.high and "33 % of them are outside their training range" in drift.warning()
    assert drift.psi["y"] < 0.01 < drift.psi["x"]  # a constant does not drift; a trend does


@pytest.fixture
def trained_to_2014(trained_home, monkeypatch):
    """The tiny champion as if its training data had ended 2014-12 (meta only): 2015-01.. is its live period."""
    from smallcap_regime import monitor as monitor_module

    home, result = trained_home
    model = copy.copy(result.model)
    model.meta = {**result.model.meta, "data_last": "2014-12-31"}
    monkeypatch.setattr(monitor_module, "load_model", lambda uri: model)
    return home, model


def test_live_record_counts_calls_after_promotion_by_hand(trained_to_2014, tiny_experiment):
    from smallcap_regime.dataset import build_dataset
    from smallcap_regime.experiment import load_experiment

    home, model = trained_to_2014
    result = monitor(home, experiment=str(tiny_experiment), since="2015-01", log=False)
    data = build_dataset(load_experiment(tiny_experiment))
    rows = data.features.loc["2015-01-31":]
    p = model.predict(rows)["p_outperform"]
    realised = data.target("relative").loc[rows.index]
    base = model.maps["relative"].base_rate
    right = ((p > base) == (realised > 0))[realised.notna()]
    assert result.record("relative") == (int(right.sum()), len(right), 3)  # the last 3 origins are pending
    assert result.live["relative"].index[0] == pd.Timestamp("2015-01-31")
    with pytest.raises(Exception, match=r"since 2014-06: the model was trained on data to 2014-12-31, so its "
                                        "calls up to then are in-sample"):
        monitor(home, experiment=str(tiny_experiment), since="2014-06", log=False)


def test_monitor_is_logged_on_the_model_version(trained_home, tiny_experiment):
    from mlflow import MlflowClient

    from smallcap_regime.tracking import store

    home, result = trained_home
    report = monitor(home, experiment=str(tiny_experiment))
    store.configure(home)
    client = MlflowClient()
    runs = client.search_runs([client.get_experiment_by_name("tiny").experiment_id],
                              "tags.model_version = '1'", order_by=["start_time DESC"])
    logged = runs[0].data.metrics
    assert logged["drift.share_outside"] == pytest.approx(report.drift.share_outside)
    assert set(f"drift.psi.{f}" for f in report.drift.psi.index) <= set(logged)
    assert logged["live.relative.calls_made"] == 0  # promoted today: no quarter has ended since
    version = client.get_model_version("smallcap-regime", result.version)
    assert version.tags["monitor.as_of"] == "2017-03-31" and "promoted_at" in version.tags
    from smallcap_regime.monitor import logged_model_id

    model_metrics = {m.key for m in client.get_logged_model(logged_model_id(version)).metrics}
    assert "drift.share_outside" in model_metrics


@pytest.mark.parametrize("fmt", ["text", "json", "csv"])
def test_monitor_cli_per_format(trained_home, tiny_experiment, fmt):
    home, _ = trained_home
    out = CliRunner().invoke(app, ["monitor", "--home", str(home), "--experiment", str(tiny_experiment),
                                   "--format", fmt], env=ENV, terminal_width=80)
    assert out.exit_code == 0, out.output
    if fmt == "json":
        record = json.loads(out.output)
        assert set(record) == {"model", "version", "as_of", "drift", "live"}
        assert set(record["drift"]) == {"share_outside", "high", "psi_mean", "outside", "psi", "train_first",
                                        "train_last"}
        assert record["live"]["relative"]["made"] == 0
    elif fmt == "csv":
        frame = pd.read_csv(io.StringIO(out.output))
        assert len(frame) == 1 and {"drift.share_outside", "live.relative.calls_right"} <= set(frame.columns)
    else:
        text = " ".join(out.output.split())
        assert "drift at 2017-03-31 against the training rows" in text
        assert "relative: calls against the base rate: right 0 of 0 - no quarter has ended since promotion" in text
        assert max(len(line) for line in out.output.splitlines()) <= 80


def test_predict_warns_when_drift_is_high(trained_home, tiny_experiment, monkeypatch):
    from datetime import date

    from smallcap_regime.workflow import forecast

    home, _ = trained_home
    fc = forecast(home, experiment=str(tiny_experiment), today=date(2017, 5, 15))
    assert not any("drifted" in w for w in fc.warnings)
    monkeypatch.setattr(drift_module, "HIGH_SHARE_OUTSIDE", 0.0)
    fc = forecast(home, experiment=str(tiny_experiment), today=date(2017, 5, 15))
    (warning,) = [w for w in fc.warnings if "drifted" in w]
    assert warning.startswith("the features have drifted from the training data (")


def test_monitor_in_a_fresh_process_reads_the_homes_store(trained_home, tiny_experiment):
    """As a user runs it: nothing configured MLflow before (the champion is found without MLflow's client)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    home, _ = trained_home
    regime = str(Path(sys.executable).with_name("regime"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")} | ENV
    out = subprocess.run([regime, "monitor", "--home", str(home), "--experiment", str(tiny_experiment),
                          "--format", "json"], env=env, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout)["version"] == "1"
