"""Evaluation metrics checked against values worked out by hand on tiny inputs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from smallcap_regime.evaluation.metrics import (
    auc,
    balanced_accuracy,
    brier,
    brier_skill,
    by_decade,
    clark_west,
    classification_report,
    hit_rate,
    log_loss,
    newey_west_se,
    non_overlapping,
    prevailing_mean,
    r2_oos,
    regression_report,
)
from smallcap_regime.evaluation.strategies import absolute_strategy_returns, performance, relative_strategy_returns

NAN = float("nan")


def ser(values, start: str = "2000-01-31") -> pd.Series:
    """Month-end indexed float Series."""
    return pd.Series(values, index=pd.date_range(start, periods=len(values), freq="ME"), dtype="float64")


# ---------------------------------------------------------------------------------------------------------
# prevailing mean
# ---------------------------------------------------------------------------------------------------------


def test_prevailing_mean_uses_only_targets_realised_h_rows_ago():
    y = ser([1, 2, 3, 4, 5, 6])
    m = prevailing_mean(y, horizon=3)
    # row 3: origins <= 0 -> mean(1) = 1; row 4: mean(1, 2) = 1.5; row 5: mean(1, 2, 3) = 2
    np.testing.assert_allclose(m.to_numpy(), [NAN, NAN, NAN, 1.0, 1.5, 2.0], equal_nan=True)
    assert m.index.equals(y.index)


def test_prevailing_mean_excludes_the_previous_origin_when_h_is_3():
    y = ser([1.0, 1.0, 1.0, 1000.0, 1000.0, 0.0])
    m = prevailing_mean(y, horizon=3)
    # at row 5 (origin t) the targets of t-1 and t-2 (the 1000s) are not yet realised: mean(1, 1, 1) = 1
    assert m.iloc[5] == 1.0
    # with h=1 the previous origin IS realised: mean(1, 1, 1, 1000, 1000) = 2003 / 5
    assert prevailing_mean(y, horizon=1).iloc[5] == pytest.approx(2003 / 5)


def test_prevailing_mean_skips_nan_and_honours_min_obs():
    y = ser([1.0, NAN, 3.0, 5.0, 7.0, NAN])
    m = prevailing_mean(y, horizon=2, min_obs=2)
    # row 2: {1} (1 obs < 2) NaN; row 3: {1, NaN} NaN; row 4: {1, NaN, 3} -> 2; row 5: {1, 3, 5} -> 3
    np.testing.assert_allclose(m.to_numpy(), [NAN, NAN, NAN, NAN, 2.0, 3.0], equal_nan=True)


# ---------------------------------------------------------------------------------------------------------
# R2_OS, Newey-West, Clark-West
# ---------------------------------------------------------------------------------------------------------


def test_r2_oos_by_hand():
    # SSE(f) = 0 + 0 + 1 = 1, SSE(m) = 1 + 0 + 1 = 2 -> 1 - 1/2 = 0.5
    assert r2_oos(ser([1, 2, 3]), ser([1, 2, 2]), ser([2, 2, 2])) == pytest.approx(0.5)
    # worse than the benchmark: SSE(f) = 4 + 0 + 0 = 4 vs SSE(m) = 2 -> 1 - 2 = -1
    assert r2_oos(ser([1, 2, 3]), ser([3, 2, 3]), ser([2, 2, 2])) == pytest.approx(-1.0)


def test_newey_west_se_by_hand():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    # mean 2.5, deviations [-1.5, -0.5, 0.5, 1.5]
    # g0 = (2.25 + 0.25 + 0.25 + 2.25) / 4 = 1.25  -> lags=0: se = sqrt(1.25 / 4) = sqrt(0.3125)
    assert newey_west_se(x, 0) == pytest.approx(math.sqrt(0.3125))
    # g1 = ((-0.5)(-1.5) + (0.5)(-0.5) + (1.5)(0.5)) / 4 = 1.25 / 4 = 0.3125
    # LRV = g0 + 2 * (1 - 1/2) * g1 = 1.25 + 0.3125 = 1.5625 -> se = sqrt(1.5625 / 4) = 0.625
    assert newey_west_se(x, 1) == pytest.approx(0.625)
    assert newey_west_se(pd.Series(x), 1) == pytest.approx(0.625)


def test_clark_west_by_hand():
    y = ser([1.0, -1.0, 2.0, 0.0])
    m = ser([0.0, 0.0, 0.0, 0.0])
    f = ser([0.5, -0.5, 0.5, 0.5])
    # d = (y-m)^2 - [(y-f)^2 - (m-f)^2]:
    #   1 - (0.25 - 0.25) = 1;  1 - (0.25 - 0.25) = 1;  4 - (2.25 - 0.25) = 2;  0 - (0.25 - 0.25) = 0
    # mean(d) = 1, deviations [0, 0, 1, -1], g0 = 2/4 = 0.5
    # lags 0: se = sqrt(0.5 / 4) = 1/sqrt(8) -> stat = sqrt(8)
    stat, p = clark_west(y, f, m, lags=0)
    assert stat == pytest.approx(math.sqrt(8))
    assert p == pytest.approx(0.5 * math.erfc(math.sqrt(8) / math.sqrt(2)))  # 1 - Phi(sqrt 8) ~ 0.00234
    # lags 1: g1 = (0*0 + 1*0 + (-1)*1) / 4 = -0.25; LRV = 0.5 + 2 * 0.5 * (-0.25) = 0.25
    # se = sqrt(0.25 / 4) = 0.25 -> stat = 4
    stat, p = clark_west(y, f, m, lags=1)
    assert stat == pytest.approx(4.0)
    assert p == pytest.approx(0.5 * math.erfc(4 / math.sqrt(2)))


def test_forecast_equal_to_benchmark_gives_zero_skill():
    rng = np.random.default_rng(0)
    y = ser(rng.normal(0.01, 0.05, 40))
    m = ser(rng.normal(0.0, 0.01, 40))
    # identical forecasts: SSE(f) == SSE(m) -> R2_OS exactly 0; d_t == 0 for all t -> documented (0.0, 0.5)
    assert r2_oos(y, m.copy(), m) == 0.0
    assert clark_west(y, m.copy(), m, lags=2) == (0.0, 0.5)
    report = regression_report(y, m.copy(), m, horizon=3)
    assert report["r2_oos"] == 0.0
    assert (report["cw_stat"], report["cw_pvalue"]) == (0.0, 0.5)
    assert (report["cw_stat_nonoverlap"], report["cw_pvalue_nonoverlap"]) == (0.0, 0.5)


def test_clark_west_constant_nonzero_differential_is_infinite():
    # y - m = 1 and f - m = 1 everywhere -> d_t = 1 - (0 - 1) = 2 constant > 0: a sure improvement
    stat, p = clark_west(ser([1.0, 1.0, 1.0]), ser([1.0, 1.0, 1.0]), ser([0.0, 0.0, 0.0]), lags=0)
    assert stat == math.inf and p == 0.0


def test_non_overlapping_keeps_the_last_origin():
    s = ser(range(8))
    # positions 7, 4, 1 (every 3rd counted back from the last), returned in date order
    assert non_overlapping(s, 3).tolist() == [1.0, 4.0, 7.0]
    assert non_overlapping(ser(range(7)), 3).tolist() == [0.0, 3.0, 6.0]
    assert non_overlapping(s, 1).equals(s)
    frame = non_overlapping(s.to_frame("x"), 4)
    assert frame["x"].tolist() == [3.0, 7.0]


def test_regression_report_drops_nan_rows_and_counts_them():
    idx_y = [0.1, 0.2, -0.1, 0.3, NAN, 0.0, 0.1, NAN]
    y = ser(idx_y)
    f = ser([0.1, 0.1, 0.1, 0.1, 0.1, NAN, 0.1, 0.1])
    m = ser([NAN, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    report = regression_report(y, f, m, horizon=3)
    # rows used: 1, 2, 3, 6 (row 0: m NaN, 4: y NaN, 5: f NaN, 7: y NaN) -> n = 4
    assert report["n"] == 4
    # y = [0.2, -0.1, 0.3, 0.1], f = 0.1, m = 0:
    # SSE(f) = 0.01 + 0.04 + 0.04 + 0 = 0.09; SSE(m) = 0.04 + 0.01 + 0.09 + 0.01 = 0.15 -> 1 - 0.6 = 0.4
    assert report["r2_oos"] == pytest.approx(0.4)
    # forecast always up; realised up in 3 of 4 rows
    assert report["hit_rate"] == pytest.approx(0.75)
    # non-overlapping grid anchored on the last used row (6): rows 6 and 3 -> 2 rows
    assert report["n_nonoverlap"] == 2
    # d = 2 (y - m)(f - m) = 0.2 * y -> rows 3, 6: [0.06, 0.02], mean 0.04, g0 = 0.0004 -> se = sqrt(0.0002)
    assert report["cw_stat_nonoverlap"] == pytest.approx(0.04 / math.sqrt(0.0002))
    assert set(report) == {
        "r2_oos", "cw_stat", "cw_pvalue", "cw_stat_nonoverlap", "cw_pvalue_nonoverlap", "hit_rate", "n",
        "n_nonoverlap",
    }


def test_regression_report_with_no_complete_rows_returns_nan():
    report = regression_report(ser([NAN, 1.0]), ser([1.0, NAN]), ser([0.0, 0.0]), horizon=3)
    assert report["n"] == 0
    assert math.isnan(report["r2_oos"]) and math.isnan(report["cw_stat"])


# ---------------------------------------------------------------------------------------------------------
# direction
# ---------------------------------------------------------------------------------------------------------


def test_hit_rate_by_hand():
    y = ser([0.1, -0.2, 0.3, -0.1])
    score = ser([0.2, 0.1, -0.1, -0.3])
    # up/up hit, down/up miss, up/down miss, down/down hit -> 2/4
    assert hit_rate(y, score) == 0.5
    # probabilities with threshold 0.5: predicted up = [T, F, T, F] vs realised [T, F, T, F] -> 1.0
    assert hit_rate(y, ser([0.6, 0.5, 0.9, 0.2]), threshold=0.5) == 1.0
    # ties count as "not up" on both sides: y = 0 is not up, score == threshold predicts not up
    # realised [F, T], predicted [F, F] -> 1/2
    assert hit_rate(ser([0.0, 0.1]), ser([0.0, 0.0])) == 0.5


def test_balanced_accuracy_by_hand():
    y_up = ser([1, 1, 1, 0])
    p_up = ser([0.9, 0.8, 0.2, 0.6])
    # predicted [1, 1, 0, 1]; recall(up) = 2/3, recall(down) = 0/1 -> (2/3 + 0) / 2 = 1/3
    assert balanced_accuracy(y_up, p_up) == pytest.approx(1 / 3)
    # boolean labels are accepted
    assert balanced_accuracy(y_up.astype(bool), p_up) == pytest.approx(1 / 3)


def test_auc_by_hand_and_single_class():
    y_up = ser([0, 0, 1, 1])
    p_up = ser([0.1, 0.4, 0.35, 0.8])
    # positive/negative pairs: 0.35>0.1 yes, 0.35>0.4 no, 0.8>0.1 yes, 0.8>0.4 yes -> 3/4
    assert auc(y_up, p_up) == pytest.approx(0.75)
    assert math.isnan(auc(ser([1, 1, 1]), ser([0.2, 0.5, 0.9])))
    # a tied positive/negative pair counts one half: pairs (0.5 vs 0.5) = 1/2, (0.9 vs 0.5) = 1 -> 3/4
    assert auc(ser([0, 1, 1]), ser([0.5, 0.5, 0.9])) == pytest.approx(0.75)


def test_brier_and_skill_by_hand():
    y_up = ser([1, 0])
    p_up = ser([0.8, 0.4])
    # ((0.8-1)^2 + (0.4-0)^2) / 2 = (0.04 + 0.16) / 2 = 0.1
    assert brier(y_up, p_up) == pytest.approx(0.1)
    # reference 0.5: brier 0.25 -> skill 1 - 0.1/0.25 = 0.6 (scalar and Series reference agree)
    assert brier_skill(y_up, p_up, 0.5) == pytest.approx(0.6)
    assert brier_skill(y_up, p_up, ser([0.5, 0.5])) == pytest.approx(0.6)


def test_log_loss_by_hand_and_clipping():
    # -(ln 0.8 + ln(1 - 0.4)) / 2
    assert log_loss(ser([1, 0]), ser([0.8, 0.4])) == pytest.approx(-(math.log(0.8) + math.log(0.6)) / 2)
    # confident misses are clipped at eps: each costs -ln(1e-6)
    assert log_loss(ser([0, 1]), ser([1.0, 0.0])) == pytest.approx(-math.log(1e-6))


def test_classification_report_keys_and_rows():
    y_up = pd.Series([1.0, 0.0, 1.0, 1.0, NAN], index=pd.date_range("2000-01-31", periods=5, freq="ME"))
    p_up = ser([0.7, 0.6, 0.4, 0.9, 0.5])
    p_ref = ser([NAN, 0.6, 0.6, 0.6, 0.6])
    report = classification_report(y_up, p_up, p_ref)
    # rows used: 1, 2, 3 -> y = [0, 1, 1], p = [0.6, 0.4, 0.9], ref = 0.6
    assert report["n"] == 3
    # brier = (0.36 + 0.36 + 0.01) / 3 = 0.73 / 3; ref = (0.36 + 0.16 + 0.16) / 3 = 0.68 / 3
    assert report["brier"] == pytest.approx(0.73 / 3)
    assert report["brier_skill"] == pytest.approx(1 - 0.73 / 0.68)
    # predicted up [T, F, T] vs [F, T, T] -> 1/3; always-up reference -> 2/3; realised majority 2/3
    assert report["hit_rate"] == pytest.approx(1 / 3)
    assert report["hit_rate_ref"] == pytest.approx(2 / 3)
    assert report["hit_rate_majority"] == pytest.approx(2 / 3)
    # pairs (pos vs neg 0.6): 0.4 < 0.6, 0.9 > 0.6 -> AUC 1/2
    assert report["auc"] == pytest.approx(0.5)
    assert {"auc", "brier", "brier_skill", "log_loss", "balanced_accuracy", "hit_rate", "n"} <= set(report)


# ---------------------------------------------------------------------------------------------------------
# strategies and performance
# ---------------------------------------------------------------------------------------------------------


def test_relative_strategy_costs_on_a_flip():
    target = ser([9, 9, 0.05, 9, 9, 0.02, 9, 9, -0.01, NAN])  # last origin not yet realised
    p_up = ser([0.5, 0.5, 0.7, 0.5, 0.5, 0.3, 0.5, 0.5, 0.6, 0.9])
    out = relative_strategy_returns(target, p_up, horizon=3, cost_bp=10)
    # grid anchored on the last realised origin (row 8): rows 2, 5, 8
    assert out.index.equals(target.index[[2, 5, 8]])
    assert out["position"].tolist() == [1.0, -1.0, 1.0]
    # costs: 10bp * |1 - 0| = 0.001 (first trade from flat), flips |-1 - 1| = 2 -> 0.002 each
    np.testing.assert_allclose(out["cost"], [0.001, 0.002, 0.002])
    np.testing.assert_allclose(out["gross"], [0.05, -0.02, -0.01])
    np.testing.assert_allclose(out["net"], [0.049, -0.022, -0.012])

    flat = relative_strategy_returns(target, p_up, horizon=3, cost_bp=10, short_side="flat")
    # positions 1, 0, 1: each change is 1 -> 0.001 each; flat period earns 0
    assert flat["position"].tolist() == [1.0, 0.0, 1.0]
    np.testing.assert_allclose(flat["net"], [0.049, -0.001, -0.011])


def test_absolute_strategy_switches_to_tbills():
    target = ser([0.10, 0.0, 0.0, -0.05, 0.0, 0.0, 0.08])
    p_up = ser([0.4, 0.0, 0.0, 0.8, 0.0, 0.0, 0.9])
    tbill = ser([0.01, 0.0, 0.0, 0.012, 0.0, 0.0, 0.011])
    out = absolute_strategy_returns(target, p_up, tbill, horizon=3, cost_bp=20)
    # rows 0, 3, 6: T-bills (no trade from initial T-bills), small caps (switch costs 0.002), small caps
    assert out["position"].tolist() == [0.0, 1.0, 1.0]
    np.testing.assert_allclose(out["gross"], [0.01, -0.05, 0.08])
    np.testing.assert_allclose(out["cost"], [0.0, 0.002, 0.0])
    np.testing.assert_allclose(out["net"], [0.01, -0.052, 0.08])
    # excess over T-bills: 0, -0.052 - 0.012 = -0.064, 0.08 - 0.011 = 0.069
    np.testing.assert_allclose(out["excess"], [0.0, -0.064, 0.069])


def test_performance_sharpe_and_volatility_by_hand():
    r = ser([0.1, -0.1, 0.2, 0.0])
    stats = performance(r, periods_per_year=4)
    # mean 0.05; sum of squared deviations 0.0025 + 0.0225 + 0.0225 + 0.0025 = 0.05; sd = sqrt(0.05 / 3)
    # sharpe = 0.05 / sqrt(1/60) * sqrt(4) = sqrt(0.15) * 2 = sqrt(0.6)
    assert stats["sharpe"] == pytest.approx(math.sqrt(0.6))
    assert stats["volatility"] == pytest.approx(math.sqrt(0.05 / 3) * 2)
    assert stats["n_periods"] == 4
    assert math.isnan(stats["turnover"])


def test_performance_geometric_annual_return_by_hand():
    # 8 quarters = 2 years, wealth 1.44 -> 1.44 ** (1/2) - 1 = 0.2 (the arithmetic mean * 4 would be 0.22)
    stats = performance(ser([0.44, 0, 0, 0, 0, 0, 0, 0]), periods_per_year=4)
    assert stats["annual_return"] == pytest.approx(0.2)


def test_performance_max_drawdown_by_hand():
    # wealth 1.1, 0.55, 0.66, 0.99: peak 1.1 -> 0.55 / 1.1 - 1 = -0.5
    assert performance(ser([0.1, -0.5, 0.2, 0.5]), 4)["max_drawdown"] == pytest.approx(-0.5)
    # the initial 1.0 is a peak: wealth 0.8, 0.88 -> 0.8 / 1.0 - 1 = -0.2
    assert performance(ser([-0.2, 0.1]), 4)["max_drawdown"] == pytest.approx(-0.2)
    assert performance(ser([0.1, 0.1]), 4)["max_drawdown"] == 0.0


def test_performance_turnover_counts_entry_from_flat():
    r = ser([0.01, 0.02, 0.03, 0.04])
    # |1-0| + |-1-1| + |-1-(-1)| + |1-(-1)| = 1 + 2 + 0 + 2 = 5 over 4 periods
    assert performance(r, 4, position=ser([1, -1, -1, 1]))["turnover"] == pytest.approx(1.25)


def test_by_decade_groups_calendar_decades():
    idx = pd.DatetimeIndex(["1978-12-31", "1979-12-31", "1980-01-31", "1989-12-31", "1990-01-31"])
    frame = pd.DataFrame({"x": [1.0, 3.0, 10.0, 20.0, 7.0]}, index=idx)
    out = by_decade(frame, lambda g: {"mean_x": float(g["x"].mean())})
    assert out.index.tolist() == ["1970s", "1980s", "1990s"]
    assert out["mean_x"].tolist() == [2.0, 15.0, 7.0]
    assert out["rows"].tolist() == [2, 2, 1]


# ---------------------------------------------------------------------------------------------------------
# input validation
# ---------------------------------------------------------------------------------------------------------


def test_validation_messages():
    y = ser([1.0, 2.0, 3.0])
    shifted = ser([1.0, 2.0, 3.0], start="2001-01-31")
    with pytest.raises(ValueError, match="y and forecast have different indexes"):
        r2_oos(y, shifted, y)
    with pytest.raises(ValueError, match="horizon must be >= 1, got 0"):
        prevailing_mean(y, horizon=0)
    with pytest.raises(ValueError, match="horizon must be >= 1, got 0"):
        non_overlapping(y, 0)
    with pytest.raises(ValueError, match=r"p_up: probabilities must lie in \[0, 1\]"):
        brier(ser([1, 0, 1]), ser([0.5, 1.2, 0.3]))
    with pytest.raises(ValueError, match=r"probabilities must lie in \[0, 1\]"):
        relative_strategy_returns(y, ser([0.5, -0.1, 0.3]), horizon=1, cost_bp=0)
    with pytest.raises(ValueError, match="y_up must contain only 0/1 or booleans"):
        auc(ser([1, 2, 0]), ser([0.5, 0.5, 0.5]))
    with pytest.raises(ValueError, match="forecast contains 1 NaN value"):
        r2_oos(y, ser([1.0, NAN, 3.0]), y)
    with pytest.raises(ValueError, match="lags must be >= 0, got -1"):
        newey_west_se(np.array([1.0, 2.0]), -1)
    with pytest.raises(ValueError, match=r"lags must be < number of observations \(3\), got 3"):
        clark_west(y, y + 1, y * 0, lags=3)
    with pytest.raises(ValueError, match="short_side must be 'reverse' or 'flat'"):
        relative_strategy_returns(y, ser([0.5, 0.5, 0.5]), horizon=1, cost_bp=0, short_side="long")
    with pytest.raises(ValueError, match="cost_bp must be a finite number >= 0"):
        relative_strategy_returns(y, ser([0.5, 0.5, 0.5]), horizon=1, cost_bp=-5)
    with pytest.raises(ValueError, match="y must be a pandas Series, got list"):
        r2_oos([1.0, 2.0], y, y)
    with pytest.raises(ValueError, match="y index must be sorted increasing"):
        prevailing_mean(y.iloc[::-1], horizon=1)
    with pytest.raises(ValueError, match="periods_per_year must be > 0"):
        performance(y, 0)
    with pytest.raises(ValueError, match="frame must have a DatetimeIndex"):
        by_decade(pd.DataFrame({"x": [1.0]}), lambda g: {})
