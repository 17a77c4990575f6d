"""A regime call a portfolio manager can use: the rule from the targets with demonstrated skill (card, report strip
and history alike), one accuracy figure per target, drivers in words, and the rotation status with its
point-in-time record."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from smallcap_regime.features.build import load_feature_spec
from smallcap_regime.features.catalogue import catalogue_markdown, feature_catalogue
from smallcap_regime.features.labels import feature_text, plain_name
from smallcap_regime.features.rotation import rotation_status, status_of, streak
from smallcap_regime.features.targets import build_targets
from smallcap_regime.models.drivers import driver_texts
from smallcap_regime.models.regime import (
    LARGE_LEAD,
    NO_CALL,
    SMALL_FALL,
    SMALL_LEAD,
    SMALL_LED_RALLY,
    SMALL_RISE,
    regime_arrays,
)

# ---------------------------------------------------------------------------------------------------------------
# item 1: the regime from the targets with skill


def test_only_the_relative_target_skilled_calls_leadership():
    rel = np.array([0.60, 0.40, 0.48, 0.60])
    ab = np.array([0.10, 0.99, 0.50, np.nan])  # the unskilled side can neither veto nor blank the call
    regime, leaning, confidence = regime_arrays(rel, ab, 0.05, 0.46, 0.62, skilled=(True, False))
    assert regime.tolist() == [SMALL_LEAD, LARGE_LEAD, NO_CALL, SMALL_LEAD]
    assert leaning.tolist() == [SMALL_LEAD, LARGE_LEAD, SMALL_LEAD, SMALL_LEAD]
    assert confidence == pytest.approx([0.60, 0.60, 0.52, 0.60])


def test_only_absolute_skilled_calls_the_direction_and_neither_calls_nothing():
    rel, ab = np.array([0.9, 0.9]), np.array([0.80, 0.40])
    assert regime_arrays(rel, ab, 0.05, 0.5, 0.62, skilled=(False, True))[0].tolist() == [SMALL_RISE, SMALL_FALL]
    assert regime_arrays(rel, ab, 0.05, 0.5, 0.62, skilled=(False, False))[0].tolist() == [NO_CALL, NO_CALL]
    both = regime_arrays(np.array([0.7]), np.array([0.8]), 0.05, 0.5, 0.62)[0]
    assert both.tolist() == [SMALL_LED_RALLY]


def test_backtest_strip_and_history_use_the_cards_rule(trained_home, tiny_experiment):
    from smallcap_regime.workflow import history

    home, result = trained_home
    model = result.model
    skilled = (model.has_skill("relative"), model.has_skill("absolute"))
    pred = result.backtest.predictions
    expected, _, _ = regime_arrays(pred["relative.lgbm_cal.p"], pred["absolute.lgbm_cal.p"], model.no_call_band,
                                   pred["relative.hist_mean.p"], pred["absolute.hist_mean.p"], skilled=skilled)
    assert pred["regime"].tolist() == expected.tolist()
    calls = history(home, experiment=str(tiny_experiment)).calls
    assert calls["regime"].tolist() == pred.loc[calls.index, "regime"].tolist()
    if skilled == (True, False):  # the tiny model's record: relative only, so the strip is not grey
        assert set(pred["regime"].dropna()) <= {SMALL_LEAD, LARGE_LEAD, NO_CALL}
        assert (pred["regime"] != NO_CALL).mean() > 0.3


# ---------------------------------------------------------------------------------------------------------------
# item 2: one accuracy figure per target


def test_the_accuracy_figure_is_the_same_in_record_history_and_mlflow(trained_home, tiny_experiment):
    from mlflow import MlflowClient

    from smallcap_regime.tracking import store
    from smallcap_regime.workflow import history

    home, result = trained_home
    store.configure(home)
    metrics = MlflowClient().get_run(result.run_id).data.metrics
    for target in ("relative", "absolute"):
        record = result.model.skill[target]
        calls = history(home, experiment=str(tiny_experiment), target=target).calls.dropna(subset=["right"])
        assert (int(calls["right"].sum()), len(calls)) == (record.calls_right, record.calls_made)
        assert metrics[f"{target}.lgbm_cal.calls_right"] == record.calls_right
        assert metrics[f"{target}.lgbm_cal.calls_made"] == record.calls_made
        assert metrics[f"{target}.lgbm_cal.calls_accuracy"] == pytest.approx(record.calls_right / record.calls_made)
        assert calls["running_hit"].iloc[-1] == pytest.approx(record.calls_right / record.calls_made)


# ---------------------------------------------------------------------------------------------------------------
# item 3: drivers in words

UNIT_KINDS = {  # the feature's declared unit -> the kinds its plain name may be written in
    "basis points": {"bp", "bp level"}, "percent p.a.": {"pct level"}, "percent": {"pct"},
    "percentage points": {"pp"}, "decimal": {"decimal"}, "decimal (<= 0)": {"decimal"},
    "annualised decimal": {"annualised"}, "ratio": {"ratio"}, "flag 0/1": {"flag"},
    "months (signed)": {"months"}, "days of average volume": {"days"}, "index points": {"points", "points change"},
    "standard deviations (positive = tighter)": {"std"}, "number of 25 bp cuts (negative = hikes)": {"cuts"},
    "calendar month 1..12 (category)": {"month"}, "category 0..3": {"cycle"}, "unitless, [-1, 1]": {"unitless"},
}


@pytest.mark.parametrize("spec_name", ["sample", "default"])
def test_every_feature_has_a_plain_name_in_its_declared_unit(spec_name):
    spec = load_feature_spec(spec_name)
    for feature, entry in zip(spec.features, feature_catalogue(spec), strict=True):
        plain, kind = plain_name(feature.name)
        assert "_" not in plain, feature.name
        assert kind in UNIT_KINDS[feature.unit], (feature.name, feature.unit, kind)
        assert entry["plain_name"] == plain
    assert "| plain name |" in catalogue_markdown(spec)


def test_feature_text_reads_as_the_issue_asks():
    assert feature_text("mkt_excess_ret_mom_12m", 0.1896) == "12-month market excess return +19.0 %"
    assert feature_text("fwd_3m_has_january_flag", 0.0) == "January in the window: no"
    assert feature_text("yield_10y_chg_3m_bp", 35.0) == "3-month change in 10-year Treasury yield +35 bp"
    assert feature_text("implied_cuts_1y_count", 6.0) == "Fed cuts priced over 1 year +6.0 cuts"
    assert feature_text("fwd_month", 11.0) == "first month of the window: November"
    assert feature_text("vix_pts", float("nan")) == "VIX missing"


def test_drivers_are_three_up_and_three_down_largest_first():
    names = ["mkt_excess_ret_mom_12m", "fwd_3m_has_january_flag", "vix_pts", "yield_10y_chg_3m_bp", "rs_mom_1m"]
    values = np.array([[0.1896, 0.0, 21.5, 35.0, -0.01]])
    points = np.array([[-2.54, -2.9, 0.4, 1.2, 0.0]])
    up, down = driver_texts(names, values, points)
    assert up == ["3-month change in 10-year Treasury yield +35 bp: +1.2 pts; VIX 21.5: +0.4 pts"]
    assert down == ["January in the window: no: -2.9 pts; 12-month market excess return +19.0 %: -2.5 pts"]


# ---------------------------------------------------------------------------------------------------------------
# item 5: rotation status, point in time

def _legs(diffs: list[float], start: str = "2000-01-31") -> pd.DataFrame:
    """SYNTHETIC test panel: small minus large return per month as given (large = 1 % a month)."""
    index = pd.date_range(start, periods=len(diffs), freq="ME", name="date")
    return pd.DataFrame({"small_ret": 0.01 + np.asarray(diffs), "large_ret": 0.01, "rf": 0.002}, index=index)


def test_rotation_status_follows_the_seeds_rule():
    panel = _legs([-0.01, 0.02, 0.01, 0.03, -0.02, -0.01])
    assert streak(panel).tolist() == [-1, 1, 2, 3, -1, -2]
    assert [status_of(r) for r in streak(panel)] == [
        "no rotation", "no rotation", "small-cap rotation under way (2 months ahead in a row)",
        "small-cap rotation confirmed (3 months ahead in a row)", "no rotation",
        "large-cap rotation under way (2 months ahead in a row)"]


def test_rotation_record_is_point_in_time():
    rng = np.random.default_rng(7)
    panel = _legs(rng.normal(0.002, 0.02, 240).tolist())
    h = 3
    target = build_targets(panel, h)[f"relative_{h}m"]
    as_of = panel.index[150]
    now = rotation_status(panel, target, as_of, h)
    # what was published by as_of alone gives the same status and record
    cut = panel.loc[:as_of]
    assert now == rotation_status(cut, build_targets(cut, h)[f"relative_{h}m"], as_of, h)
    # rewriting everything after as_of changes nothing at as_of
    future = panel.copy()
    future.loc[future.index > as_of, "small_ret"] = 0.5
    assert now == rotation_status(future, build_targets(future, h)[f"relative_{h}m"], as_of, h)
    # by hand: origins whose 3 months ended by as_of, confirmed ones among them
    known = target.loc[: as_of - pd.offsets.MonthEnd(h)]
    confirmed = streak(panel).loc[known.index] >= 3
    assert (now.confirmed_n, now.confirmed_kept) == (int(confirmed.sum()), int((known[confirmed] > 0).sum()))
    assert (now.base_n, now.base_kept) == (len(known), int((known > 0).sum()))
    assert now.line().startswith(f"rotation: {now.status}; after a confirmed small-cap rotation small caps kept "
                                 f"leading over the next 3 months {now.confirmed_kept} of {now.confirmed_n} times")
