"""Backtest: calibration and regime units, determinism, baselines on identical folds, planted signal vs noise.

Every panel here is SYNTHETIC (seeded RNG, built below): the numbers say whether the machinery can find a signal
that was put there on purpose and refrains from finding one in noise; they say nothing about markets.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from smallcap_regime.data.panel import Panel
from smallcap_regime.evaluation.backtest import run_backtest
from smallcap_regime.evaluation.columns import MODELS
from smallcap_regime.experiment import load_experiment
from smallcap_regime.models.calibration import Platt, conformal_interval, fit_platt, fit_shrinkage
from smallcap_regime.models.regime import (
    LARGE_LED_RALLY,
    NO_CALL,
    RISK_OFF,
    SMALL_FALL_LESS,
    SMALL_LED_RALLY,
    regime_labels,
)

from helpers import synthetic_panel, write_experiment


@pytest.fixture(scope="module", autouse=True)
def _single_threaded_blas():
    """OpenBLAS threads only add overhead to these small fits (the L-BFGS of Platt scaling and the logistic
    baseline): limiting them halves a backtest's run time on a 2-core machine."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


# ---------------------------------------------------------------------------------------------------------
# calibration maps
# ---------------------------------------------------------------------------------------------------------


def test_fit_shrinkage_by_hand():
    f, m = np.array([1.0, 2.0, 3.0]), np.zeros(3)
    # w = sum d (y - m) / sum d^2 with d = f - m = (1, 2, 3), y = 1: 6 / 14
    assert fit_shrinkage(f, m, np.ones(3)) == pytest.approx(3 / 7)
    # not centred on zero: m = 1, f = (2, 3, 0), y = (1.5, 1, 1) -> d = (1, 2, -1), y - m = (0.5, 0, 0): 0.5 / 6
    assert fit_shrinkage(np.array([2.0, 3.0, 0.0]), np.ones(3), np.array([1.5, 1.0, 1.0])) == pytest.approx(1 / 12)
    assert fit_shrinkage(f, m, 2 * f) == 1.0  # least squares says 2: clipped to 1 (never extrapolate)
    assert fit_shrinkage(f, m, -f) == 0.0  # anti-skill: clipped to 0 (the prevailing mean)
    assert fit_shrinkage(m, m, f) == 0.0  # the forecast never departs from the mean


def test_conformal_interval_order_statistics():
    r = np.arange(1.0, 20.0)[::-1]  # 19 residuals 1..19, unsorted
    # coverage 0.8, n = 19: k_lo = floor(20 * 0.1) = 2, k_hi = ceil(20 * 0.9) = 18 -> 2nd and 18th smallest
    assert conformal_interval(r, 0.8) == (2.0, 18.0)
    # n = 9: k_lo = floor(1.0) = 1, k_hi = ceil(9.0) = 9 -> the extremes
    assert conformal_interval(np.arange(1.0, 10.0), 0.8) == (1.0, 9.0)
    # n = 29, coverage 0.9: k_lo = floor(30 * 0.05) = 1, k_hi = ceil(30 * 0.95) = 29 (also float-sensitive levels)
    assert conformal_interval(np.arange(1.0, 30.0), 0.9) == (1.0, 29.0)
    # n = 39, 0.9: floor(2.0) = 2, ceil(38.0) = 38
    assert conformal_interval(np.arange(1.0, 40.0), 0.9) == (2.0, 38.0)
    # n = 10, 0.5: floor(11 * 0.25) = 2, ceil(11 * 0.75) = 9
    assert conformal_interval(np.arange(1.0, 11.0), 0.5) == (2.0, 9.0)
    # NaN residuals are ignored, not counted
    assert conformal_interval(np.r_[np.arange(1.0, 10.0), np.nan, np.nan], 0.8) == (1.0, 9.0)


def test_conformal_interval_too_few_residuals_is_nan():
    lo, hi = conformal_interval(np.arange(1.0, 9.0), 0.8)  # n = 8: ceil(9 * 0.9) = 9 > 8
    assert np.isnan(lo) and np.isnan(hi)
    assert all(np.isnan(conformal_interval(np.array([]), 0.8)))
    assert all(np.isnan(conformal_interval(np.array([np.nan, np.nan]), 0.5)))


def test_platt_identity_and_map():
    p = np.array([0.1, 0.5, 0.9])
    np.testing.assert_allclose(Platt()(p), p)
    # a = 2, b = 0 squares the odds: 0.9 -> 81 / 82
    np.testing.assert_allclose(Platt(2.0, 0.0)(p), [1 / 82, 0.5, 81 / 82])
    np.testing.assert_allclose(Platt(0.0, np.log(3))(p), 0.75)  # a = 0: a constant base rate


def test_fit_platt_recovers_identity_on_calibrated_probabilities():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.05, 0.95, 5000)
    y = (rng.uniform(size=p.size) < p).astype(float)
    platt = fit_platt(p, y)
    assert platt.a == pytest.approx(1.0, abs=0.1)
    assert platt.b == pytest.approx(0.0, abs=0.1)


def test_fit_platt_shrinks_uninformative_probabilities_toward_the_base_rate():
    rng = np.random.default_rng(1)
    p = rng.uniform(0.05, 0.95, 5000)
    y = (rng.uniform(size=p.size) < 0.7).astype(float)  # unrelated to p, base rate 0.7
    platt = fit_platt(p, y)
    assert abs(platt.a) < 0.1
    assert platt(np.array([0.05, 0.5, 0.95])) == pytest.approx(np.full(3, y.mean()), abs=0.03)


def test_fit_platt_corrects_overconfidence():
    rng = np.random.default_rng(2)
    q = rng.uniform(0.2, 0.8, 5000)  # true probabilities
    y = (rng.uniform(size=q.size) < q).astype(float)
    logit = np.log(q / (1 - q))
    raw = 1 / (1 + np.exp(-3 * logit))  # three times too confident
    assert fit_platt(raw, y).a == pytest.approx(1 / 3, abs=0.08)


# ---------------------------------------------------------------------------------------------------------
# regimes
# ---------------------------------------------------------------------------------------------------------


def test_regime_quadrants_band_and_confidence():
    idx = pd.date_range("2000-01-31", periods=8, freq="ME")
    rel = pd.Series([0.70, 0.70, 0.20, 0.20, 0.53, 0.70, 0.5, np.nan], index=idx)
    ab = pd.Series([0.80, 0.40, 0.90, 0.10, 0.80, 0.46, 0.5, 0.80], index=idx)
    out = regime_labels(rel, ab, no_call_band=0.05)
    assert out.index.equals(idx)
    assert out["leaning"].iloc[:7].tolist() == [
        SMALL_LED_RALLY, SMALL_FALL_LESS, LARGE_LED_RALLY, RISK_OFF, SMALL_LED_RALLY, SMALL_FALL_LESS, RISK_OFF,
    ]  # 0.5 is not "> 0.5": it leans to "not up"
    assert out["regime"].iloc[:7].tolist() == [
        SMALL_LED_RALLY, SMALL_FALL_LESS, LARGE_LED_RALLY, RISK_OFF, NO_CALL, NO_CALL, NO_CALL,
    ]
    # P(quadrant) if independent: 0.7 * 0.8, 0.7 * 0.6, 0.8 * 0.9, 0.8 * 0.9, 0.53 * 0.8, 0.7 * 0.54, 0.25
    np.testing.assert_allclose(out["confidence"].iloc[:7], [0.56, 0.42, 0.72, 0.72, 0.424, 0.378, 0.25])
    assert out.iloc[7].isna().all()  # a missing probability: no regime, no leaning, no confidence


def test_regime_band_width_is_configurable():
    idx = pd.date_range("2000-01-31", periods=2, freq="ME")
    rel, ab = pd.Series([0.58, 0.62], index=idx), pd.Series([0.9, 0.9], index=idx)
    assert regime_labels(rel, ab, 0.05)["regime"].tolist() == [SMALL_LED_RALLY, SMALL_LED_RALLY]
    assert regime_labels(rel, ab, 0.10)["regime"].tolist() == [NO_CALL, SMALL_LED_RALLY]
    assert regime_labels(rel, ab, 0.0)["regime"].tolist() == [SMALL_LED_RALLY, SMALL_LED_RALLY]


def test_regime_rejects_misaligned_inputs():
    a = pd.Series([0.6], index=pd.DatetimeIndex(["2000-01-31"]))
    b = pd.Series([0.6], index=pd.DatetimeIndex(["2000-02-29"]))
    with pytest.raises(ValueError, match="p_outperform and p_positive have different indexes"):
        regime_labels(a, b)


# ---------------------------------------------------------------------------------------------------------
# SYNTHETIC panels and a small experiment
# ---------------------------------------------------------------------------------------------------------

PLANTED = 0.035  # monthly small-minus-large mean per pp of Baa-Aaa spread above its 1 pp long-run level


def write_test_experiment(directory: Path, trees: int, oos_start: str):
    return load_experiment(write_experiment(directory, "test_experiment", trees=trees, oos_start=oos_start, refit=36,
                                            calibration_min_obs=48, description="backtest test experiment; the "
                                            "SYNTHETIC panel is passed in (panel=...)"))


@pytest.fixture(scope="module")
def exp(tmp_path_factory):
    """40-tree models, 36-month refits, out-of-sample from 1985: 17 folds on 1955-2014 (8 of them burn-in)."""
    return write_test_experiment(tmp_path_factory.mktemp("exp"), trees=40, oos_start="1985-01")


@pytest.fixture(scope="module")
def planted(exp, tmp_path_factory):
    return run_backtest(exp, tmp_path_factory.mktemp("home"), panel=synthetic_panel(1, PLANTED))


@pytest.fixture(scope="module")
def noise(exp, tmp_path_factory):
    return run_backtest(exp, tmp_path_factory.mktemp("home"), panel=synthetic_panel(1, 0.0))


def test_synthetic_panels_carry_the_planted_signal_and_only_it():
    """Sanity of the generator (no model involved): the spread predicts the relative target only where planted."""
    from smallcap_regime.features.targets import build_targets

    for strength, low, high in ((PLANTED, 0.4, 0.8), (0.0, -0.15, 0.15)):
        frame = synthetic_panel(1, strength).frame
        y = build_targets(frame, 3)["relative_3m"]
        ok = y.notna()
        corr = np.corrcoef((frame["baa"] - frame["aaa"])[ok], y[ok])[0, 1]
        assert low < corr < high, (strength, corr)


# ---------------------------------------------------------------------------------------------------------
# planted signal vs noise
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_planted_signal_is_detected_by_the_calibrated_lightgbm(planted):
    """Seed 1 was fixed up front. Over seeds 1-6 of this exact setup the calibrated relative forecast had R2_OS
    0.10-0.41 and Clark-West p < 3e-6 (seed 1: R2_OS 0.27, p ~ 3e-16). In exploratory runs a weaker plant (0.025)
    was missed for one seed in five: LightGBM spreads its splits over ~50 mostly-noise inputs."""
    m = planted.metrics
    cal, raw = m.loc[("relative", "lgbm_cal")], m.loc[("relative", "lgbm")]
    assert cal["r2_oos"] > 0.05, cal
    assert cal["cw_pvalue"] < 0.05 and cal["cw_pvalue_nonoverlap"] < 0.05, cal
    assert raw["cw_pvalue"] < 0.05 and raw["r2_oos"] > 0, raw
    assert cal["auc"] > 0.55 and cal["brier_skill"] > 0, cal  # the calibrated probability finds it too
    # the shrinkage learnt from past out-of-sample pairs that the forecast is worth keeping
    weights = planted.predictions.loc[planted.predictions["oos"], "relative.shrink_weight"]
    assert weights.mean() > 0.3


@pytest.mark.slow
def test_noise_is_not_claimed_as_skill(noise):
    """Seed 1 was fixed up front. Over noise seeds 1-8 of this exact setup the raw LightGBM forecast had R2_OS
    -0.14..-0.05 and Clark-West p 0.33-0.92; the shrinkage, fitted on past out-of-sample pairs, kept the calibrated
    forecast at (or within w <= 0.01 of) the prevailing mean, p 0.5-0.89. Any single seed still has a ~5% chance of
    p < 0.05 by construction; these seeds do not, and the test is deterministic."""
    m = noise.metrics
    cal, raw = m.loc[("relative", "lgbm_cal")], m.loc[("relative", "lgbm")]
    assert cal["cw_pvalue"] >= 0.05, cal
    assert cal["r2_oos"] < 0.01, cal
    assert raw["cw_pvalue"] >= 0.05, raw
    assert raw["r2_oos"] < 0, raw  # fitting noise costs: the raw forecast is worse than the prevailing mean
    weights = noise.predictions.loc[noise.predictions["oos"], "relative.shrink_weight"]
    assert weights.mean() < 0.2  # ... and the shrinkage, fitted on past pairs, knows it


# ---------------------------------------------------------------------------------------------------------
# baselines on identical folds, per decade
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_every_model_is_scored_on_the_same_origins(noise):
    m = noise.metrics
    assert m.index.names == ["target", "model"]
    assert set(m.index) == {(t, model) for t in ("relative", "absolute") for model in MODELS}
    assert set(MODELS) == {"lgbm", "lgbm_cal", "linear", "linear_cal", "hist_mean", "momentum"}
    oos = noise.oos
    for target in ("relative", "absolute"):
        realised = oos[oos[f"{target}.y"].notna()]
        counts = m.loc[target, "n"]
        assert (counts == len(realised)).all(), counts
        assert len(realised) == len(oos) - 3  # every realised OOS origin: 1985-01 .. 2014-09
        for model in MODELS:  # every model forecast every one of them (point and probability)
            assert realised[[f"{target}.{model}.f", f"{target}.{model}.p"]].notna().all().all(), model
    assert oos.index[0] == pd.Timestamp("1985-01-31") and oos.index[-1] == pd.Timestamp("2014-12-31")


@pytest.mark.slow
def test_the_prevailing_mean_has_exactly_zero_skill_against_itself(noise):
    for target in ("relative", "absolute"):
        hm = noise.metrics.loc[(target, "hist_mean")]
        assert hm["r2_oos"] == 0.0
        assert (hm["cw_stat"], hm["cw_pvalue"]) == (0.0, 0.5)
        assert hm["brier_skill"] == 0.0


@pytest.mark.slow
def test_metrics_per_decade_cover_the_out_of_sample_period(noise):
    d = noise.decade_metrics.sort_index()
    assert d.index.names == ["target", "model", "decade"]
    for target in ("relative", "absolute"):
        for model in MODELS:
            block = d.loc[(target, model)]
            assert block.index.tolist() == ["1980s", "1990s", "2000s", "2010s"]
            assert block["rows"].tolist() == [60, 120, 120, 60]  # 1985-89, 90s, 00s, 2010-14
            assert block["n"].sum() == noise.metrics.loc[(target, model), "n"]
    assert (d.xs("hist_mean", level="model")["r2_oos"] == 0.0).all()


# ---------------------------------------------------------------------------------------------------------
# determinism
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_two_runs_are_identical(tmp_path):
    """Same experiment, same panel: bit-identical predictions and metrics (bagging and feature subsampling on)."""
    small = write_test_experiment(tmp_path, trees=8, oos_start="1975-01")
    panel = synthetic_panel(3, PLANTED, end="1990-12")
    first = run_backtest(small, tmp_path / "home", panel=panel)
    second = run_backtest(small, tmp_path / "home", panel=Panel(frame=panel.frame.copy(), source="synthetic"))
    assert len(first.predictions) > 250 and first.predictions["relative.lgbm.f"].notna().all()
    pd.testing.assert_frame_equal(first.predictions, second.predictions, check_exact=True)
    pd.testing.assert_frame_equal(first.metrics, second.metrics, check_exact=True)
    pd.testing.assert_frame_equal(first.strategy_returns, second.strategy_returns, check_exact=True)
    assert first.final_maps == second.final_maps
