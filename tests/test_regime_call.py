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
    client = MlflowClient()
    (child,) = client.search_runs([client.get_run(result.run_id).info.experiment_id],
                                  f"tags.mlflow.parentRunId = '{result.run_id}' and attributes.run_name = 'backtest'")
    metrics = child.data.metrics  # the backtest child run holds every metric
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
        "no rotation (large caps ahead last month only)", "no rotation (small caps ahead last month only)",
        "small-cap rotation under way (2 months ahead in a row)",
        "small-cap rotation confirmed (3 months ahead in a row)", "no rotation (large caps ahead last month only)",
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
    large = streak(panel).loc[known.index] <= -3
    assert (now.large_confirmed_n, now.large_confirmed_kept) == (int(large.sum()), int((known[large] <= 0).sum()))
    assert now.line().startswith(f"rotation: {now.status}; after a confirmed small-cap rotation small caps kept "
                                 f"leading over the next 3 months {now.confirmed_kept} of {now.confirmed_n} times")


# ---------------------------------------------------------------------------------------------------------------
# item 7: machine-readable output, one CLI test per command and format

ENV = {"COLUMNS": "80", "NO_COLOR": "1", "TERM": "dumb"}


def _run(*args: str):
    from typer.testing import CliRunner

    from smallcap_regime.cli import app

    out = CliRunner().invoke(app, list(args), env=ENV, terminal_width=80)
    assert out.exit_code == 0, out.output
    return out.output


def test_predict_text_is_the_card_at_80_columns(trained_home, tiny_experiment):
    home, result = trained_home
    text = _run("predict", "--home", str(home), "--experiment", str(tiny_experiment))
    assert max(len(line) for line in text.splitlines()) <= 80
    flat = " ".join(text.split())
    assert "regime: " in flat and "rotation: " in flat and "pushing P up: " in flat
    assert f"right {result.model.skill['relative'].calls_right} of" in flat


def test_predict_json_has_the_documented_keys(trained_home, tiny_experiment):
    import json

    home, result = trained_home
    record = json.loads(_run("predict", "--home", str(home), "--experiment", str(tiny_experiment), "-f", "json"))
    assert set(record) == {"as_of", "window", "horizon_months", "source", "model", "in_sample", "warnings", "notes",
                           "regime", "regime_leaning", "rotation", "targets", "scenario"}
    assert record["as_of"] == "2017-03-31" and record["scenario"] is None
    rel = record["targets"]["relative"]
    assert set(rel) == {"p", "base_rate", "has_skill", "forecast", "lo", "hi", "interval_coverage", "accuracy",
                        "calls_like_this", "p_above_half_hit_rate", "auc", "brier_skill", "drivers_up",
                        "drivers_down"}
    skill = result.model.skill["relative"]
    assert rel["accuracy"] == {"label": "calls against the base rate", "right": skill.calls_right,
                               "made": skill.calls_made, "share": pytest.approx(skill.calls_right / skill.calls_made)}
    assert len(rel["drivers_up"]) == 3 and all(d.endswith(" pts") for d in rel["drivers_up"])
    assert record["rotation"]["status"] and record["rotation"]["horizon"] == 3


def test_predict_csv_is_one_row_of_the_model_output(trained_home, tiny_experiment):
    import io

    home, _ = trained_home
    frame = pd.read_csv(io.StringIO(_run("predict", "--home", str(home), "--experiment", str(tiny_experiment),
                                         "--format", "csv")))
    assert len(frame) == 1 and frame.loc[0, "case"] == "baseline"
    assert {"p_outperform", "regime", "relative_drivers_up", "relative_calls_right_all"} <= set(frame.columns)


def test_history_json_and_csv_carry_every_call(trained_home, tiny_experiment):
    import io
    import json

    from smallcap_regime.workflow import history

    home, _ = trained_home
    calls = history(home, experiment=str(tiny_experiment), start="1995-01", end="1995-12").calls
    args = ("history", "--home", str(home), "--experiment", str(tiny_experiment), "--from", "1995-01", "--to",
            "1995-12")
    record = json.loads(_run(*args, "--format", "json"))
    assert record["target"] == "relative" and len(record["calls"]) == 12
    first = record["calls"][0]
    assert set(first) == {"origin", "window", "p", "base_rate", "call", "realised", "right", "running_hit", "regime"}
    assert first["origin"] == "1995-01-31" and first["p"] == pytest.approx(calls["p"].iloc[0])
    frame = pd.read_csv(io.StringIO(_run(*args, "--format", "csv")))
    assert len(frame) == 12 and frame["right"].tolist() == calls["right"].tolist()
    text = _run(*args)
    assert "right so far" in text and max(len(line) for line in text.splitlines()) <= 80


def test_an_unknown_format_is_one_line_exit_2(trained_home, tiny_experiment):
    import os
    import subprocess
    import sys
    from pathlib import Path

    home, _ = trained_home
    regime = str(Path(sys.executable).with_name("regime"))
    done = subprocess.run([regime, "history", "--home", str(home), "--format", "xml"], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **ENV})
    assert done.returncode == 2 and done.stderr == "error: --format 'xml' is not one of text, json, csv\n"
