"""MLflow tracking, the registered pyfunc model and the champion gate (offline sample, tiny experiment)."""

from __future__ import annotations

import math

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from smallcap_regime.models.regime import REGIMES
from smallcap_regime.experiment import load_experiment
from smallcap_regime.models.bundle import OUTPUT_COLUMNS
from smallcap_regime.tracking import registry, store
from smallcap_regime.tracking.train import train


def _runs(home, experiment_name):
    store.configure(home)
    exp = mlflow.get_experiment_by_name(experiment_name)
    return mlflow.search_runs([exp.experiment_id], output_format="list")


def test_train_logs_parent_and_child_runs_with_metrics_and_artifacts(trained_home):
    home, result = trained_home
    runs = _runs(home, "tiny")
    parent = next(r for r in runs if r.info.run_id == result.run_id)
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == result.run_id]
    assert sorted(r.info.run_name for r in children) == ["absolute models", "backtest", "relative models"]
    # flattened config, data fingerprint and provenance on the parent
    assert parent.data.params["validation.oos_start"] == "1990-01"
    assert parent.data.params["model.relative.regressor.n_estimators"] == "25"
    assert parent.data.params["data.fingerprint"] == result.backtest.panel.fingerprint()
    assert parent.data.params["data.last"] == "2017-03-31"
    assert parent.data.tags["registered_version"] == result.version
    # every backtest metric with baseline deltas on the backtest child
    backtest = next(r for r in children if r.info.run_name == "backtest")
    m = backtest.data.metrics
    expected = float(result.backtest.metrics.loc[("relative", "lgbm_cal"), "r2_oos"])
    assert math.isclose(m["relative.lgbm_cal.r2_oos"], expected, rel_tol=1e-12)
    assert math.isclose(m["relative.lgbm_cal.r2_oos_minus_hist_mean"], expected, rel_tol=1e-9)
    assert "absolute.strategy.lgbm_cal.sharpe" in m
    client = MlflowClient()
    names = {a.path for a in client.list_artifacts(backtest.info.run_id, "backtest")}
    for wanted in ("predictions.parquet", "fold_metrics.csv", "decade_metrics.csv", "strategies.png",
                   "calibration.png", "regimes.png"):
        assert f"backtest/{wanted}" in names
    rel = next(r for r in children if r.info.run_name == "relative models")
    rel_files = {a.path for a in client.list_artifacts(rel.info.run_id)}
    assert {"feature_importance_gain.csv", "shap_summary.csv", "shap_summary.png"} <= rel_files
    parent_files = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"model_card.md", "data_vintages.json", "registry_decision.json"} <= parent_files
    card = client.download_artifacts(result.run_id, "model_card.md")
    assert "Out-of-sample results" in open(card).read()


def test_registered_model_predicts_every_output_column(trained_home):
    home, result = trained_home
    store.configure(home)
    model = mlflow.pyfunc.load_model(result.model_uri)
    rows = result.backtest.features.tail(3)
    out = model.predict(rows)
    assert list(out.columns) == OUTPUT_COLUMNS
    assert len(out) == 3
    assert out["p_outperform"].between(0, 1).all() and out["p_positive"].between(0, 1).all()
    assert (out["relative_lo"] <= out["relative_forecast"]).all()
    assert (out["relative_forecast"] <= out["relative_hi"]).all()
    assert set(out["regime"]) <= set(REGIMES)
    assert out["relative_drivers"].str.contains("=").all()
    # the signature names every feature column as double
    schema = model.metadata.get_input_schema()
    assert schema.input_names() == list(result.backtest.features.columns)


def test_forecast_equals_bundle_prediction(trained_home):
    home, result = trained_home
    direct = result.model.predict(result.backtest.features.tail(1))
    store.configure(home)
    served = mlflow.pyfunc.load_model(result.model_uri).predict(result.backtest.features.tail(1))
    pd.testing.assert_frame_equal(direct.reset_index(drop=True), served, check_dtype=False)


def test_gate_keeps_champion_against_equal_model_and_force_moves_it(trained_home, tiny_experiment):
    home, first = trained_home  # trained with --force, so it is the champion
    exp = load_experiment(tiny_experiment)
    store.configure(home)
    client = MlflowClient()
    assert str(client.get_model_version_by_alias("smallcap-regime", "champion").version) == first.version
    # the same config again is deterministic, so it cannot beat the champion: the alias stays
    second = train(exp, home)
    assert second.decision.value == first.decision.value
    assert not second.decision.promote
    assert "does not beat champion" in second.decision.reason or "baseline" in second.decision.reason
    assert str(client.get_model_version_by_alias("smallcap-regime", "champion").version) == first.version
    # --force moves it and says so, on the model version and the run
    third = train(exp, home, force=True)
    assert third.decision.promote and third.decision.forced
    assert third.decision.reason.startswith("forced with --force")
    assert str(client.get_model_version_by_alias("smallcap-regime", "champion").version) == third.version
    assert client.get_model_version("smallcap-regime", third.version).tags["forced"] == "True"


def _metrics(**values):
    index = pd.MultiIndex.from_tuples([("relative", m) for m in values], names=["target", "model"])
    return pd.DataFrame({"brier_skill": list(values.values())}, index=index)


def test_decide_requires_beating_every_baseline():
    metrics = _metrics(lgbm_cal=0.02, hist_mean=0.0, momentum=-0.9, linear=0.03, linear_cal=-0.1)
    decision = registry.decide(metrics, "relative.lgbm_cal.brier_skill", "q", None, force=False)
    assert not decision.promote
    assert decision.reason == "does not beat baseline linear (brier_skill 0.0200 vs 0.0300)"


def test_decide_worse_than_champion_is_refused_and_better_promoted():
    metrics = _metrics(lgbm_cal=0.02, hist_mean=0.0, momentum=-0.9, linear=0.01, linear_cal=-0.1)
    champion = {"version": "3", "value": 0.05, "experiment": "q", "primary_metric": "relative.lgbm_cal.brier_skill"}
    worse = registry.decide(metrics, "relative.lgbm_cal.brier_skill", "q", champion, force=False)
    assert not worse.promote
    assert worse.reason == "does not beat champion v3 (brier_skill 0.0200 vs 0.0500)"
    better = registry.decide(metrics, "relative.lgbm_cal.brier_skill", "q", {**champion, "value": 0.01}, False)
    assert better.promote and not better.forced
    forced = registry.decide(metrics, "relative.lgbm_cal.brier_skill", "q", champion, force=True)
    assert forced.promote and forced.forced and "does not beat champion v3" in forced.reason


def test_decide_refuses_champion_from_another_experiment_and_lower_is_better_metrics():
    metrics = _metrics(lgbm_cal=0.02, hist_mean=0.0, momentum=-0.9, linear=0.01, linear_cal=-0.1)
    champion = {"version": "1", "value": -1.0, "experiment": "quickstart",
                "primary_metric": "relative.lgbm_cal.brier_skill"}
    decision = registry.decide(metrics, "relative.lgbm_cal.brier_skill", "live", champion, force=False)
    assert not decision.promote
    assert "not comparable" in decision.reason
    losses = pd.DataFrame({"brier": [0.20, 0.25, 0.30]}, index=pd.MultiIndex.from_tuples(
        [("relative", "lgbm_cal"), ("relative", "hist_mean"), ("relative", "linear")]))
    assert registry.decide(losses, "relative.lgbm_cal.brier", "x", None, False).promote
    with pytest.raises(ValueError, match="must look like '<target>.<model>.<metric>'"):
        registry.decide(losses, "brier", "x", None, False)
