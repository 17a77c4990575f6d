"""Research variants ([research] in an experiment) and the harness, smoke-tested on a short window.

The full harness (all variants on both windows) is `python benchmarks/research.py`; it is not run here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from smallcap_regime.errors import ConfigError
from smallcap_regime.experiment import load_experiment
from smallcap_regime.research import harness, variants
from smallcap_regime.research.harness import RunSummary, Variant, load_variant, run_research

from conftest import REPO

VARIANTS = REPO / "benchmarks" / "variants"


@pytest.mark.parametrize(("body", "message"), [
    ('drop_families = ["macros"]', r"\[research\]: drop_families = \['macros'\]: unknown feature family 'macros'; "
                                   r"expected some of: yields, rate_cuts"),
    ('drop_families = ["macro", "macro"]', r"lists a family twice"),
    ("monotone = {baa_aaa_spread_bp = 2}", r"\[research.monotone\]: baa_aaa_spread_bp = 2: Input should be -1 or 1"),
    ("combo = true", r"\[research\]: unknown key 'combo'; expected one of: combination, pooled"),
    ("stable_min_months = 6", r"stable_min_months = 6: Input should be greater than or equal to 12"),
])
def test_research_table_is_validated_at_load(tmp_path, body, message):
    path = tmp_path / "exp.toml"
    path.write_text(f'extends = "quickstart"\n[research]\n{body}\n')
    with pytest.raises(ConfigError, match=message):
        load_experiment(path)


def test_every_variant_file_is_a_valid_overlay_of_both_windows(tmp_path):
    files = sorted(VARIANTS.glob("*.toml"))
    assert {"base", "combination", "pooled", "stable-subset", "monotone", "categorical", "abs-vol-scaled",
            "abs-stress", "drop-credit"} <= {p.stem for p in files}
    for path in files:
        for window, base in harness.WINDOWS.items():
            exp = harness.variant_experiment(load_variant(path), window, base, tmp_path)
            assert exp.name == f"{window}-{path.stem}"
    assert load_experiment("quickstart").research == load_experiment("live").research == \
        harness.variant_experiment(load_variant(VARIANTS / "base.toml"), "sample", "quickstart", tmp_path).research


def test_an_overlay_may_not_choose_its_base(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('extends = "live"\n')
    with pytest.raises(ConfigError, match="a variant overlay may not set 'extends'"):
        load_variant(path)


def test_rsz_is_the_mean_of_one_variable_fits():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3)) * [1.0, 5.0, 0.1]
    y = 0.02 * x[:, 0] - 0.001 * x[:, 1] + rng.normal(0, 0.05, 200)
    up = (y > 0).astype(float)
    x[:5, 2] = np.nan  # a feature missing on some rows
    model = variants.fit_rsz(x, y, up)
    test = rng.normal(size=(7, 3))
    f, p = model.predict(test)
    f_ref, p_ref = np.zeros(7), np.zeros(7)
    for j in range(3):
        ok = ~np.isnan(x[:, j])
        f_ref += LinearRegression().fit(x[ok, j:j + 1], y[ok]).predict(test[:, j:j + 1]) / 3
        xj = np.where(ok, x[:, j], x[ok, j].mean())
        mu, sd = xj.mean(), x[ok, j].std()
        clf = LogisticRegression(C=1.0).fit((xj[:, None] - mu) / sd, up)
        p_ref += clf.predict_proba((test[:, j:j + 1] - mu) / sd)[:, 1] / 3
    np.testing.assert_allclose(f, f_ref, atol=1e-12)
    np.testing.assert_allclose(p, p_ref, atol=2e-3)  # the logistic fits standardise on the known rows only


def test_stable_subset_keeps_a_feature_whose_sign_holds_in_every_decade():
    idx = pd.date_range("1960-01-31", periods=360, freq="ME")
    rng = np.random.default_rng(1)
    x = pd.DataFrame({"stable": rng.normal(size=360), "flips": rng.normal(size=360)}, index=idx)
    decade_sign = np.where((idx.year // 10) % 2 == 0, 1.0, -1.0)
    y = pd.Series(x["stable"] + decade_sign * x["flips"] + rng.normal(0, 0.5, 360), index=idx)
    assert variants.stable_columns(x, y, ["stable", "flips"], 36) == ["stable"]
    # nothing stable: all candidates stay (a model needs inputs)
    assert variants.stable_columns(x, y, ["flips"], 36) == ["flips"]


def test_vol_scaled_absolute_target_forecasts_in_return_units(tiny_experiment, tmp_path):
    path = tmp_path / "scaled.toml"
    path.write_text(f'extends = "{tiny_experiment}"\n[research]\nabsolute_vol_scaled = true\n'
                    "monotone = {baa_aaa_spread_bp = 1}\ncategorical = true\n")
    exp = load_experiment(path)
    from smallcap_regime.dataset import build_dataset
    from smallcap_regime.evaluation.backtest import fit_variant_models
    from smallcap_regime.models.baselines import fit_linear_baselines

    data = build_dataset(exp)
    train = data.features.loc["1960":"1985"]
    y, up = data.target("absolute").loc[train.index], data.target("absolute", label=True).loc[train.index]
    plan = variants.training_plan(train, y, up, [c for c in train.columns if train[c].notna().any()], exp,
                                  "absolute")
    assert plan.scale_column == "small_mvol_6m_ann"  # the window closest to the 3-month horizon
    assert plan.regressor["monotone_constraints"][plan.columns.index("baa_aaa_spread_bp")] == 1
    assert plan.fit_kwargs["categorical_feature"] == ["fwd_month", "fwd_pres_cycle"]
    scale = train["small_mvol_6m_ann"] * np.sqrt(3 / 12)
    np.testing.assert_allclose(plan.y, y / scale)
    test = data.features.loc["1986"]
    out = fit_variant_models(train, y, up, test, exp, "absolute")
    linear = fit_linear_baselines(plan.x[plan.columns].to_numpy(dtype="float64"), plan.y.to_numpy(dtype="float64"),
                                  plan.y_up.to_numpy(dtype="int64"), exp.ridge_alpha, exp.logistic_c)
    raw, _ = linear.predict(test[plan.columns].to_numpy(dtype="float64"))
    np.testing.assert_allclose(out["linear.f"], raw * test["small_mvol_6m_ann"] * 0.5)


def test_pooled_rows_on_the_sample_are_the_other_size_spreads(tiny_experiment, tmp_path):
    path = tmp_path / "pooled.toml"
    path.write_text(f'extends = "{tiny_experiment}"\n[research]\npooled = true\n')
    exp = load_experiment(path)
    from smallcap_regime.dataset import build_dataset

    data = build_dataset(exp)
    rows = variants.pooled_rows(exp, data.panel, data.spec, data.features.index, None)
    assert [r.name for r in rows] == ["S1V - S3V", "S3V - S5V", "S1M - S5M"]
    for r in rows:
        assert list(r.features.columns) == list(data.features.columns) and r.features.index.equals(data.features.index)
        # the spread's own technical features, the same macro features
        assert not np.allclose(r.features["rs_mom_12m"], data.features["rs_mom_12m"], equal_nan=True)
        pd.testing.assert_series_equal(r.features["baa_aaa_spread_bp"], data.features["baa_aaa_spread_bp"])
        assert r.targets["relative_3m"].notna().sum() == data.target("relative").notna().sum()


def _summary(variant: str, window: str, brier: float, auc: float, decades: dict[str, float]) -> RunSummary:
    rows = pd.DataFrame([{"target": "relative", "model": "lgbm_cal", "brier_skill": brier, "auc": auc,
                          **{f"auc_{d}": v for d, v in decades.items()}}]).set_index(["target", "model"])
    return RunSummary(variant, window, "ok", rows)


def test_adoption_needs_brier_and_auc_gains_on_every_window_and_no_decade_lost():
    base = [_summary("base", "a", 0.01, 0.56, {"1990s": 0.52, "2000s": 0.60}),
            _summary("base", "b", 0.02, 0.58, {"1990s": 0.48, "2000s": 0.62})]
    runs = base + [
        _summary("better", "a", 0.02, 0.57, {"1990s": 0.53, "2000s": 0.61}),
        _summary("better", "b", 0.03, 0.59, {"1990s": 0.49, "2000s": 0.63}),  # 1990s stays below 0.5: allowed
        _summary("loses-decade", "a", 0.03, 0.60, {"1990s": 0.49, "2000s": 0.70}),
        _summary("loses-decade", "b", 0.03, 0.60, {"1990s": 0.55, "2000s": 0.65}),
        _summary("one-window", "a", 0.05, 0.65, {"1990s": 0.60, "2000s": 0.70}),
        _summary("one-window", "b", 0.01, 0.65, {"1990s": 0.60, "2000s": 0.70}),
        RunSummary("not-applicable", "a", "n/a: no such family"),
        _summary("not-applicable", "b", 0.05, 0.65, {"1990s": 0.60, "2000s": 0.70}),
    ]
    verdict = harness.adoption(runs)
    assert verdict["adopt"].to_dict() == {"better": True, "loses-decade": False, "one-window": False,
                                          "not-applicable": False}
    assert verdict.loc["loses-decade", "decades lost"] == "a:1990s"


def test_harness_smoke_on_a_short_window(tiny_experiment, tmp_path):
    """Base, a combination and a not-applicable ablation on the tiny experiment; tables, log and MLflow."""
    home = tmp_path / "home"
    home.mkdir()
    chosen = [load_variant(VARIANTS / "base.toml"), load_variant(VARIANTS / "combination.toml"),
              load_variant(VARIANTS / "drop-rate_cuts.toml")]
    summaries = run_research(chosen, home, windows={"tiny": tiny_experiment}, echo=lambda line: None)
    assert [(s.variant, s.status[:3]) for s in summaries] == [("base", "ok"), ("combination", "ok"),
                                                              ("drop-rate_cuts", "n/a")]
    relative = harness.tables(summaries)["relative"]
    assert {("base", "tiny", "linear_cal"), ("combination", "tiny", "combo_cal"),
            ("combination", "tiny", "rsz_cal"), ("drop-rate_cuts", "tiny", "-")} <= set(relative.index)
    assert {"R2_OS", "CW p", "AUC", "Brier skill", "Sharpe", "B&H Sharpe", "auc_1990s", "auc_2000s"} <= \
        set(relative.columns)
    assert np.isfinite(relative.loc[("combination", "tiny", "combo_cal"), "Sharpe"])
    assert harness.adoption(summaries).loc["combination", "model"] == "combo_cal"
    assert harness.tried(home) == 2
    run_research(chosen[1:2], home, windows={"tiny": tiny_experiment}, echo=lambda line: None, mlflow=False)
    assert harness.tried(home) == 2  # the same overlay again is not a new variant
    import mlflow

    from smallcap_regime.tracking.store import configure

    configure(home)
    runs = mlflow.search_runs(experiment_names=[harness.MLFLOW_EXPERIMENT])
    assert sorted(runs["tags.mlflow.runName"]) == ["base @ tiny", "combination @ tiny", "drop-rate_cuts @ tiny"]
    assert "metrics.relative.combo_cal.brier_skill" in runs.columns


def test_variant_identity_is_name_and_content():
    assert Variant("a", "x = 1").sha256 != Variant("a", "x = 2").sha256
