"""MLflow tracking, the registered pyfunc model and the champion gate (offline sample, tiny experiment)."""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from smallcap_regime import tuning
from smallcap_regime.experiment import load_experiment
from smallcap_regime.models.regime import REGIMES
from smallcap_regime.tracking import registry, store
from smallcap_regime.tracking.pyfunc import SERVED_COLUMNS, SERVING_FLAG
from smallcap_regime.tracking.review import run_name
from smallcap_regime.tracking.train import train
from smallcap_regime.tuning.space import search_space

from helpers import scoring_json, synthetic_panel, write_experiment

pytestmark = pytest.mark.slow  # MLflow training and registry


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
    assert parent.info.run_name == "train tiny forced"
    # flattened config, final hyperparameters, their source and the data fingerprint on the parent
    assert parent.data.params["validation.oos_start"] == "1990-01"
    assert parent.data.params["model.relative.regressor.n_estimators"] == "25"
    assert parent.data.params["params_source"] == "model specs"
    assert parent.data.params["data.fingerprint"] == result.backtest.panel.fingerprint()
    assert parent.data.params["data.last"] == "2017-03-31"
    assert parent.data.tags["registered_version"] == result.version
    # the headline set on the parent, gate metric first in the UI's alphabetical order; nothing else
    headline = parent.data.metrics
    assert sorted(headline) == ["0_gate_rel_brier_skill", "1_rel_auc", "2_rel_calls_accuracy", "3_rel_p50_hit_rate",
                                "5_rel_cw_pvalue", "6_abs_brier_skill", "7_rel_sharpe", "8_rel_sharpe_buy_hold"]
    metrics = result.backtest.metrics
    gate = float(metrics.loc[("relative", "lgbm_cal"), "brier_skill"])
    digits = lambda value: float(f"{value:.4g}")  # noqa: E731  (4 significant digits)
    assert gate == result.decision.value and headline["0_gate_rel_brier_skill"] == digits(gate)
    pvalue = float(metrics.loc[("relative", "lgbm_cal"), "cw_pvalue"])
    assert headline["5_rel_cw_pvalue"] == digits(pvalue) and (pvalue == 0 or headline["5_rel_cw_pvalue"] > 0)
    assert headline["6_abs_brier_skill"] == digits(float(metrics.loc[("absolute", "lgbm_cal"), "brier_skill"]))
    assert headline["8_rel_sharpe_buy_hold"] == digits(
        float(result.backtest.strategy_metrics.loc[("relative", "buy_and_hold"), "sharpe"]))
    assert parent.data.tags["gate_metric"] == "relative.lgbm_cal.brier_skill"
    expected = float(metrics.loc[("relative", "lgbm_cal"), "r2_oos"])
    # the decision at training time is a tag; which version is champion lives in the alias only
    assert "champion" not in parent.data.tags and parent.data.tags["gate_promoted"] == "True"
    assert parent.data.tags["worker"].endswith(":" + str(os.getpid()))
    note = parent.data.tags["mlflow.note.content"]
    assert note.startswith("**tiny** on sample data") and "Headline metrics" in note
    assert "| `0_gate_rel_brier_skill` |" in note and "no champion" in note
    # the backtest child: the same params, the full metric set without meaningless deltas
    backtest = next(r for r in children if r.info.run_name == "backtest")
    assert backtest.data.params == parent.data.params
    m = backtest.data.metrics
    assert math.isclose(m["relative.lgbm_cal.r2_oos"], expected, rel_tol=1e-12)
    assert "absolute.strategy.lgbm_cal.sharpe" in m and "relative.lgbm_cal.log_loss_minus_linear_cal" in m
    assert not [k for k in m if "pvalue_minus" in k or "cw_stat_minus" in k or k.endswith("n_minus_hist_mean")]
    assert "relative.lgbm_cal.r2_oos_minus_hist_mean" not in m and "relative.hist_mean.brier_skill" not in m
    assert [m[f"relative.lgbm_cal.{k}"] for k in ("auc", "calls_accuracy", "hit_rate")] == pytest.approx(
        [headline[k] for k in ("1_rel_auc", "2_rel_calls_accuracy", "3_rel_p50_hit_rate")], rel=1e-3)
    # the panel as a dataset input, named by source and vintage, digest = the fingerprint
    client = MlflowClient()
    (dataset_input,) = client.get_run(result.run_id).inputs.dataset_inputs
    dataset = dataset_input.dataset
    assert dataset.name == "sample panel 1949-01..2017-03 @ arch 8.0.0, linearmodels 7.1"
    assert dataset.digest == result.backtest.panel.fingerprint()[:32]
    # metrics logged against the logged model too (`regime monitor` may add its own there later)
    logged = mlflow.get_logged_model(mlflow.models.get_model_info(result.model_uri).model_id)
    on_model = {metric.key: metric.value for metric in logged.metrics}
    assert {k: on_model.get(k) for k in headline} == pytest.approx(headline)
    assert not [k for k in on_model if k not in headline and not k.startswith(("drift.", "live."))]
    names = {a.path for a in client.list_artifacts(backtest.info.run_id, "backtest")}
    for wanted in ("predictions.parquet", "fold_metrics.csv", "decade_metrics.csv", "strategies.png",
                   "calibration.png", "regimes.png"):
        assert f"backtest/{wanted}" in names
    rel = next(r for r in children if r.info.run_name == "relative models")
    rel_files = {a.path for a in client.list_artifacts(rel.info.run_id)}
    assert {"feature_importance_gain.csv", "shap_summary.csv", "shap_summary.png"} <= rel_files
    parent_files = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"model_card.md", "data_vintages.json", "registry_decision.json", "vs_champion.json"} <= parent_files
    card = client.download_artifacts(result.run_id, "model_card.md")
    assert "Out-of-sample results" in open(card).read()
    assert mlflow.get_experiment_by_name("tiny").tags["mlflow.experimentKind"] == "custom_model_development"


def test_run_names_are_short_and_stable():
    assert run_name("tiny") == "train tiny"
    tuned = run_name("tiny", "tiny-relative.classifier", 7)
    assert tuned == "train tiny (tuned: study tiny-relative.classifier, trial 7)"
    assert run_name("tiny", force=True) == "train tiny forced"


def test_logged_model_carries_its_code_and_pinned_requirements(trained_home):
    home, result = trained_home
    store.configure(home)
    local = Path(mlflow.artifacts.download_artifacts(result.model_uri))
    requirements = (local / "requirements.txt").read_text().split()
    names = {line.split("==")[0] for line in requirements}
    assert {"mlflow", "lightgbm", "pandas", "numpy", "scipy", "scikit-learn"} <= names
    assert all("==" in line for line in requirements)
    assert not any("smallcap" in line for line in requirements)
    assert (local / "code" / "smallcap_regime" / "tracking" / "pyfunc.py").is_file()
    assert (local / "code" / "smallcap_regime" / "models" / "bundle.py").is_file()


def test_registered_model_predicts_every_output_column(trained_home):
    home, result = trained_home
    store.configure(home)
    model = mlflow.pyfunc.load_model(result.model_uri)
    rows = result.backtest.features.tail(3)
    out = model.predict(rows)
    assert list(out.columns) == SERVED_COLUMNS
    assert len(out) == 3 and (out["model_version"] == result.version).all()
    assert out["p_outperform"].between(0, 1).all() and out["p_positive"].between(0, 1).all()
    assert (out["relative_lo"] <= out["relative_forecast"]).all()
    assert (out["relative_forecast"] <= out["relative_hi"]).all()
    assert set(out["regime"]) <= set(REGIMES)
    assert out["relative_drivers_up"].str.contains(" pts").all()  # drivers in words, served
    # the signature names every feature column as double
    schema = model.metadata.get_input_schema()
    assert schema.input_names() == list(result.backtest.features.columns)


def test_forecast_equals_bundle_prediction(trained_home):
    home, result = trained_home
    direct = result.model.predict(result.backtest.features.tail(1))
    store.configure(home)
    served = mlflow.pyfunc.load_model(result.model_uri).predict(result.backtest.features.tail(1))
    pd.testing.assert_frame_equal(direct.reset_index(drop=True), served.drop(columns="model_version"),
                                  check_dtype=False)


def test_under_the_scoring_server_the_model_answers_records_that_encode_exactly_like_its_frame(trained_home,
                                                                                                monkeypatch):
    home, result = trained_home
    store.configure(home)
    model = mlflow.pyfunc.load_model(result.model_uri)
    rows = result.backtest.features.dropna(subset=result.model.required)  # every month the model can score
    frame = model.predict(rows)
    monkeypatch.setenv(SERVING_FLAG, "true")  # what `mlflow models serve` sets before serving
    records = model.predict(rows)
    assert isinstance(frame, pd.DataFrame) and isinstance(records, list) and len(records) == len(frame) > 500
    assert list(records[0]) == SERVED_COLUMNS
    assert scoring_json(records) == scoring_json(frame)


def _vs_champion(client, run_id):
    table = mlflow.artifacts.load_dict(f"{client.get_run(run_id).info.artifact_uri}/vs_champion.json")
    return pd.DataFrame(table["data"], columns=table["columns"])


def _gate_tags(client, version):
    return {k: v for k, v in client.get_model_version("smallcap-regime", version).tags.items()
            if k.startswith("gate") or k in ("run_id", "forced", "primary_metric_value")}


def test_gate_decisions_stay_on_their_versions_through_promotions_and_a_rejection(tiny_experiment, tmp_path):
    # its own home: it moves the champion, which the tests sharing `trained_home` rely on
    home = tmp_path / "home"
    exp = load_experiment(tiny_experiment)
    first = train(exp, home, force=True)
    store.configure(home)
    client = MlflowClient()
    assert str(client.get_model_version_by_alias("smallcap-regime", "champion").version) == first.version
    v1 = _gate_tags(client, first.version)
    assert v1["gate_promoted"] == "True" and v1["run_id"] == first.run_id
    assert v1["gate_metric"] == "relative.lgbm_cal.brier_skill" and float(v1["gate_value"]) == first.decision.value
    description = client.get_model_version("smallcap-regime", first.version).description
    assert description.startswith(f"Trained by run `{first.run_id}` of experiment **tiny**, parameters from the "
                                  "model specs.\nData: sample panel 1949-01..2017-03 @ arch")
    assert "Gate test: `relative.lgbm_cal.brier_skill` = " in description and "(no champion before)" in description
    assert "Gate decision at registration: **promoted to @champion" in description
    # the same config again is deterministic: the same model, so no new version; it cannot beat itself (rejected)
    second = train(exp, home)
    assert not second.registered and second.version == first.version
    assert second.decision.value == first.decision.value and not second.decision.promote
    # compared origin by origin with the champion's stored forecasts: identical losses are no evidence
    comparison = second.decision.comparison
    assert comparison is not None and comparison.statistic == 0 and comparison.p_value == 0.5
    assert comparison.n == int(first.backtest.predictions["oos"].sum() - first.backtest.experiment.horizon)
    # (on the tiny experiment the calibrated logistic baseline may also out-score it: a second reason, said first)
    assert (f"does not beat champion v{first.version} beyond noise: its Brier loss is not lower (Brier "
            in second.decision.reason)
    assert second.decision.summary() == (f"gate metric relative.lgbm_cal.brier_skill = {first.decision.value:.4f}"
                                         f" vs champion v{first.version} {first.decision.value:.4f} (+0.0000)")
    versions = client.search_model_versions("name='smallcap-regime'")
    assert [v.version for v in versions] == [int(first.version)]
    tags = versions[0].tags
    assert tags["retrained_by_run_id"] == second.run_id
    assert tags[f"gate_retrain.{second.run_id}"] == f"not promoted: {second.decision.reason}"
    assert _gate_tags(client, first.version) == {**v1, f"gate_retrain.{second.run_id}":
                                                 tags[f"gate_retrain.{second.run_id}"]}  # v1's own: unchanged
    assert "challenger" not in client.get_registered_model("smallcap-regime").aliases
    # vs_champion of the retrain: every headline metric equal to the champion's
    table = _vs_champion(client, second.run_id)
    assert list(table.columns) == ["metric", "this run", "champion", "better?"]
    assert table["metric"].iloc[0] == "0_gate_rel_brier_skill"
    assert set(table["better?"]) == {"equal", "n/a"}
    # a different, weaker model (2 slow trees) that does not beat the champion: a new version, alias challenger
    weak = write_experiment(tmp_path, "tiny", trees=2, learning_rate=0.01)
    other = train(load_experiment(weak), home)
    assert other.registered and other.version != first.version and not other.decision.promote
    aliases = client.get_registered_model("smallcap-regime").aliases
    assert aliases == {"champion": int(first.version), "challenger": int(other.version)}
    v2 = _gate_tags(client, other.version)
    assert v2["gate_promoted"] == "False" and v2["gate_champion_version"] == first.version
    table = _vs_champion(client, other.run_id).set_index("metric")
    gate = table.loc["0_gate_rel_brier_skill"]
    assert gate["this run"] == float(f"{other.decision.value:.4g}")
    assert gate["champion"] == float(f"{first.decision.value:.4g}")
    assert gate["better?"] == "no"
    auc = table.loc["1_rel_auc"]
    assert auc["better?"] == ("yes" if auc["this run"] > auc["champion"] else "no")
    assert table.loc["5_rel_cw_pvalue", "better?"] == (
        "yes" if table.loc["5_rel_cw_pvalue", "this run"] < table.loc[
            "5_rel_cw_pvalue", "champion"] else "no")  # lower is better
    note = client.get_run(other.run_id).data.tags["mlflow.note.content"]
    assert f"| metric | this run | champion v{first.version} | better? |" in note
    assert "| `0_gate_rel_brier_skill` |" in note and "| no |" in note
    assert "Gate decision at registration: **not promoted**" in client.get_model_version(
        "smallcap-regime", other.version).description
    challenger = client.get_model_version("smallcap-regime", other.version)
    assert challenger.tags["gate_p_value"] == f"{other.decision.comparison.p_value:.4f}"
    assert challenger.tags["gate_champion_brier"] == f"{other.decision.comparison.champion_brier:.6f}"
    assert "Diebold-Mariano" in challenger.description and "not promoted" in challenger.description
    # --force moves the champion to it and says so on the run and in the version's retrain tag; v2's own gate
    # decision (not promoted when it was registered) stays as it was
    forced = train(load_experiment(weak), home, force=True)
    assert forced.version == other.version and forced.decision.promote and forced.decision.forced
    assert forced.decision.reason.startswith("forced although it")
    assert client.get_registered_model("smallcap-regime").aliases == {"champion": int(other.version)}
    tags = client.get_model_version("smallcap-regime", other.version).tags
    assert tags[f"gate_retrain.{forced.run_id}"].startswith("promoted (forced): forced although it")
    assert {k: tags[k] for k in v2} == v2
    # a second promotion of a new version: earlier versions and runs keep what was true when they were made
    third = train(load_experiment(write_experiment(tmp_path, "tiny", trees=3)), home, force=True)
    assert third.registered and third.decision.promote
    assert client.get_registered_model("smallcap-regime").aliases == {"champion": int(third.version)}
    assert _gate_tags(client, third.version)["gate_champion_version"] == other.version
    assert {k: v for k, v in _gate_tags(client, first.version).items() if not k.startswith("gate_retrain")} == v1
    assert "Gate decision at registration: **promoted to @champion (forced)**" in client.get_model_version(
        "smallcap-regime", third.version).description
    for run in (first, second, other, forced, third):
        tags = client.get_run(run.run_id).data.tags
        assert "champion" not in tags and tags["gate_promoted"] == str(run.decision.promote)


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


def _planted_forecasts(edge: float, seed: int = 5, n: int = 345, noise: float = 0.05, run: int = 1):
    """SYNTHETIC monthly forecasts: the champion says 0.5 give or take; the challenger differs from it by noise of
    sd ``noise`` (another tuning draw) and moves ``edge`` toward the outcome. Its expected Brier loss is lower by
    about ``edge - noise**2``. Outcomes come in runs of 3 months (overlapping quarterly targets), the challenger's
    departures in runs of ``run`` months (features persist from one month to the next)."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range("1990-01-31", periods=n, freq="ME")
    y = np.repeat(rng.integers(0, 2, n // 3 + 1), 3)[:n].astype(float)
    champ = np.clip(0.5 + rng.normal(0, 0.05, n), 0.01, 0.99)
    chal = np.clip(champ + edge * (2 * y - 1) + np.repeat(rng.normal(0, noise, n // run + 1), run)[:n], 0.01, 0.99)
    return (pd.DataFrame({"y_up": y, "p": champ}, index=idx), pd.DataFrame({"y_up": y, "p": chal}, index=idx))


def test_gate_does_not_promote_a_tiny_improvement_and_promotes_a_real_one():
    """Seeds 0-19, fixed up front. A tiny edge (expected Brier loss 0.0005 lower, a Brier skill of ~0.002 like a few
    tuning trials gave) is what a level-0.10 test should promote about as rarely as pure noise; a real edge of 0.06
    every time."""
    from smallcap_regime.evaluation.compare import compare_forecasts

    metrics = _metrics(lgbm_cal=0.02, hist_mean=0.0, momentum=-0.9, linear=0.01, linear_cal=-0.1)
    champion = {"version": "3", "value": 0.0, "experiment": "q", "primary_metric": "relative.lgbm_cal.brier_skill"}

    def decisions(edge: float, noise: float):
        out = []
        for seed in range(20):
            champ, chal = _planted_forecasts(edge, seed, noise=noise)
            comparison = compare_forecasts(champ, chal, horizon=3, level=0.10)
            out.append(registry.decide(metrics, "relative.lgbm_cal.brier_skill", "q", champion, False, comparison))
        return out

    tiny = decisions(0.0105, 0.1)
    assert sum(d.promote for d in tiny) <= 3
    refused = next(d for d in tiny if not d.promote)
    assert "beyond noise" in refused.reason and "one-sided p 0." in refused.reason
    real = decisions(0.06, 0.05)
    assert all(d.promote for d in real)
    big = real[0].comparison
    assert big is not None and big.p_value < 0.01 and big.challenger_auc > big.champion_auc
    assert real[0].reason.startswith("beats its baselines and champion v3 (Brier ")
    assert big.tags()["gate_p_value"] == f"{big.p_value:.4f}"
    # lower loss but a worse AUC is refused too
    worse_auc = dataclasses.replace(big, challenger_auc=big.champion_auc - 0.01)
    refused = registry.decide(metrics, "relative.lgbm_cal.brier_skill", "q", champion, False, worse_auc)
    assert not refused.promote and "its AUC is worse" in refused.reason


def test_gate_statistic_respects_overlap_and_scores_both_on_the_newer_labels():
    from smallcap_regime.evaluation.compare import compare_forecasts

    champ, chal = _planted_forecasts(0.03, seed=9, noise=0.1, run=3)
    naive, hac = (compare_forecasts(champ, chal, horizon=h, level=0.10) for h in (1, 3))
    assert hac.lags == 2 and naive.lags == 0
    # overlapping quarters: fewer independent origins, so less evidence either way
    assert abs(hac.statistic) < abs(naive.statistic) and hac.champion_brier == naive.champion_brier
    # only common origins are compared
    assert compare_forecasts(champ.iloc[:200], chal, horizon=3, level=0.1).n == 200
    # a label revised since the champion was trained: both are scored on the challenger's (newer) outcomes
    revised = champ.assign(y_up=1 - champ["y_up"])
    assert compare_forecasts(revised, chal, horizon=3, level=0.1) == hac


@pytest.mark.parametrize("name", ["quickstart", "live"])
def test_shipped_experiments_tune_what_the_gate_scores(name):
    exp = load_experiment(name)
    target, model, metric = registry.split_metric(exp.primary_metric)
    settings = search_space(exp)
    assert (settings.target, settings.model, settings.metric) == (target, "classifier", "log_loss")
    assert model == "lgbm_cal" and metric == "brier_skill"  # a score of the calibrated classifier's probability


@pytest.mark.slow
def test_tune_then_train_promotes_on_a_planted_signal(tmp_path):
    # SYNTHETIC panel: small caps lead when the credit spread is far from normal either way (trees can see it);
    # the experiment's own model specs overfit (40 trees at learning rate 0.5); tuning uses the shipped [tuning]
    path = write_experiment(tmp_path, "planted", trees=40, learning_rate=0.5)
    shipped = (Path(__file__).resolve().parents[1] / "experiments" / "quickstart.toml").read_text()
    path.write_text(path.read_text() + shipped[shipped.index("[tuning]"):])
    panel = synthetic_panel(3, strength=0.06, shape="v")
    home = tmp_path / "home"
    exp = load_experiment(path)
    first = train(exp, home, panel=panel)
    assert first.decision.promote  # the first champion

    study = tuning.tune(exp, home, trials=4, panel=panel)
    assert study.study_name == "planted-relative.classifier"
    best = tuning.best_trial(home, study.study_name)
    tuned = load_experiment(path, model_overrides=best.overrides)
    second = train(tuned, home, panel=panel, params_source=f"optuna study {study.study_name}, trial {best.number}",
                   tuned=(study.study_name, best.number))
    assert second.decision.promote and not second.decision.forced
    assert second.decision.reason.startswith(f"beats its baselines and champion v{first.version}")
    assert second.decision.value > first.decision.value
    assert second.decision.summary().startswith(
        f"gate metric relative.lgbm_cal.brier_skill = {second.decision.value:.4f} vs champion v{first.version}")
    store.configure(home)
    run = mlflow.get_run(second.run_id)
    assert run.info.run_name == f"train planted (tuned: study planted-relative.classifier, trial {best.number})"
    assert run.data.tags["tuned_study"] == study.study_name and run.data.tags["tuned_trial"] == str(best.number)
    assert run.data.params["params_source"] == f"optuna study planted-relative.classifier, trial {best.number}"
    leaves = best.overrides["relative"]["classifier"]["num_leaves"]
    assert run.data.params["model.relative.classifier.num_leaves"] == str(leaves)
    # the second promotion: v1 keeps the decision it got (promoted then), the alias alone says v2 is champion
    client = MlflowClient()
    assert client.get_model_version("smallcap-regime", first.version).tags["gate_promoted"] == "True"
    assert client.get_registered_model("smallcap-regime").aliases == {"champion": int(second.version)}
    assert "champion" not in mlflow.get_run(first.run_id).data.tags
    table = _vs_champion(client, second.run_id).set_index("metric")
    assert table.loc["0_gate_rel_brier_skill", "better?"] == "yes"
    assert f"champion v{first.version} (" in client.get_model_version("smallcap-regime", second.version).description
