"""A forecast a portfolio manager can act on: window, percent, coverage, base rates, out-of-sample record, the
"no demonstrated skill" case, staleness, the in-sample warning, the record of past calls and the HTML report."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from datetime import date

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from smallcap_regime.card import forecast_lines, target_lines
from smallcap_regime.cli import app
from smallcap_regime.data.cache import Cache
from smallcap_regime.data.freshness import StaleSeries, stale_series
from smallcap_regime.data.panel import Panel
from smallcap_regime.errors import RegimeError, StaleInputError
from smallcap_regime.evaluation.record import forecast_window
from smallcap_regime.features.labels import feature_text
from smallcap_regime.models.bundle import OUTPUT_COLUMNS, RegimeModel
from smallcap_regime.models.calibration import Platt, probability_points
from smallcap_regime.workflow import forecast, history

# the trained tiny model's data end 2017-03-31; a day in May 2017 keeps the data fresh
FRESH = date(2017, 5, 15)
VIX = StaleSeries("fred/VIXCLS", "vix", pd.Timestamp("2017-01-25"), pd.Timestamp("2017-01-25"), "10d")


def invoke(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), terminal_width=80)
    assert result.exit_code == 0, result.output
    return result.output


def test_forecast_window_names_the_months():
    assert forecast_window(pd.Timestamp("2017-03-31"), 3) == "2017-04..2017-06"
    assert forecast_window(pd.Timestamp("2016-11-30"), 3) == "2016-12..2017-02"
    assert forecast_window(pd.Timestamp("2016-11-30"), 1) == "2016-12"


def test_predict_says_window_percent_coverage_base_rates_and_record(trained_home, tiny_experiment):
    home, result = trained_home
    fc = forecast(home, experiment=str(tiny_experiment), today=FRESH)
    assert fc.window == "2017-04..2017-06" and not fc.in_sample and fc.warnings == []
    assert fc.output["relative_interval_coverage"] == pytest.approx(0.8)
    assert set(OUTPUT_COLUMNS) <= set(fc.output.index)
    out = invoke("predict", "--home", str(home), "--experiment", str(tiny_experiment))
    assert "forecast made at 2017-03-31 for 2017-04..2017-06 (the next 3 months" in out
    assert "80 % interval" in out and "base rate" in out
    p = fc.output["p_outperform"] * 100
    assert f"{p:.1f} %" in out
    record = result.model.skill["relative"]
    text = " ".join(out.split())
    # the one accuracy figure, as the report, `regime history` and the MLflow metrics give it
    assert (f"calls against the base rate: right {record.calls_right} of {record.calls_made} "
            f"({record.calls_right / record.calls_made * 100:.0f} %)") in text
    right, made = record.calls_like(fc.output["p_outperform"] > fc.output["relative_base_rate"])
    assert f"the base rate like this one: right {right} of {made}" in text
    assert f"P>0.5 hit rate {record.hit_rate * 100:.1f} %" in text
    assert text.count("hit rate") == text.count("P>0.5 hit rate")  # the other quantity, always labelled as such
    assert "confidence" not in out
    # drivers in words with units: three pushing P up, three pushing it down
    up = text.split("pushing P up: ")[1].split(" pushing P down: ")[0]
    assert re.fullmatch(r"(?:[^:]+?(?:: (?:yes|no|\w+))? [-+]?[\d.]+ ?[^:;]*: \+\d+\.\d pts ?){3}", up), up
    assert "_" not in up
    assert "offline sample" in out and out.count("offline sample") == 1


def test_no_demonstrated_skill_shows_the_base_rate_and_no_drivers(trained_home):
    _, result = trained_home
    model: RegimeModel = result.model
    flat = dataclasses.replace(model.skill["absolute"], brier_skill=-0.004, brier_skill_lo=-0.03, platt_a=0.0)
    assert model.skill["relative"].has_skill and not flat.has_skill
    shrunk = RegimeModel(model.features, model.boosters, model.maps, model.horizon, model.no_call_band,
                         model.required, model.meta, model.ranges, skill={**model.skill, "absolute": flat})
    out = shrunk.predict(result.backtest.features.tail(1)).iloc[0]
    assert out["p_positive"] == pytest.approx(model.maps["absolute"].base_rate)
    assert out["absolute_drivers_up"] == out["absolute_drivers_down"] == "" and out["relative_drivers_up"] != ""
    assert not out["absolute_has_skill"] and out["relative_has_skill"]
    lines = target_lines(out, "absolute", 0.05)
    assert lines[0] == (f"absolute: no demonstrated skill: this is the historical base rate, P(small caps rise) = "
                        f"{model.maps['absolute'].base_rate * 100:.1f} %; the forecast shown is the historical mean")
    assert not any("drivers" in line for line in lines)
    assert out["regime"] == "no confident call"
    assert out["regime"] in ("small-cap leadership likely", "large-cap leadership likely", "no confident call")
    assert out["absolute_forecast"] == pytest.approx(model.maps["absolute"].prevailing_mean)  # no forecast of its own
    fc = dataclasses.make_dataclass("F", ["output", "no_call_band"])(out, 0.05)
    line = forecast_lines(fc)[0]
    assert line.startswith(f"regime: {out['regime']} (from relative, read against its base rate")
    assert "absolute has no demonstrated skill: that side is its base rate, P(small caps rise) " in line


def test_skill_record_survives_save_and_load(trained_home, tmp_path):
    _, result = trained_home
    loaded = RegimeModel.load(result.model.save(tmp_path / "bundle"))
    assert loaded.skill == result.model.skill


def test_drivers_are_in_calibrated_probability_points(trained_home):
    _, result = trained_home
    row = result.backtest.features.tail(1)
    points = result.model.points(row, "relative").iloc[0]
    out = result.model.predict(row).iloc[0]
    for side, top in (("up", points.idxmax()), ("down", points.idxmin())):
        assert out[f"relative_drivers_{side}"].startswith(
            f"{feature_text(top, row[top].iloc[0])}: {points[top]:+.1f} pts")
    platt = Platt(0.5, 0.2)
    contrib = np.array([[0.4, -0.2, 0.0]])
    raw = np.array([0.1])
    points = probability_points(contrib, raw, platt)
    expected = 100 * (platt.of_logit(raw) - platt.of_logit(raw - contrib[0, 0]))
    assert points[0, 0] == pytest.approx(expected[0]) and points[0, 2] == 0.0
    assert points[0, 1] < 0 < points[0, 0]
    assert np.all(probability_points(contrib, raw, Platt(0.0, 0.3)) == 0.0)  # flat calibration: no drivers


def test_past_as_of_warns_that_it_is_in_sample(trained_home, tiny_experiment):
    home, _ = trained_home
    out = invoke("predict", "--home", str(home), "--experiment", str(tiny_experiment), "--as-of", "2008-09")
    text = " ".join(out.split())
    assert "forecast made at 2008-09-30 for 2008-10..2008-12" in text
    assert "warning: 2008-09-30 is in-sample" in text
    assert "the out-of-sample call made at that origin: `regime history --from 2008-09 --to 2008-09`" in text


def test_old_data_are_flagged_against_today(trained_home, tiny_experiment):
    home, _ = trained_home
    fc = forecast(home, experiment=str(tiny_experiment), today=date(2026, 2, 28))
    assert fc.warnings == ["the data end 2017-03-31, 3256 days before today (2026-02-28): this forecast is for "
                           "months that may already have passed; run `regime data pull` for fresh data"]


def test_stale_series_are_found_from_the_lag_table(home):
    cache = Cache(home)
    daily = pd.bdate_range("2016-11-01", "2017-01-25", name="date")
    cache.write("fred/VIXCLS", pd.DataFrame({"value": 12.0}, index=daily), source="fred", url="u", raw_sha256="a")
    fresh = pd.bdate_range("2017-01-01", "2017-03-31", name="date")
    cache.write("fred/DGS10", pd.DataFrame({"value": 2.4}, index=fresh), source="fred", url="u", raw_sha256="b")
    (stale,) = stale_series(home, pd.Timestamp("2017-03-31"))
    assert stale == VIX
    assert stale.describe(pd.Timestamp("2017-03-31")) == (
        "fred/VIXCLS (vix): last value 2017-01-25, 65 days old at 2017-03-31 (max age 10d)")
    assert stale_series(home, pd.Timestamp("2017-01-31")) == []
    when = pd.Timestamp("2017-03-31")
    panel = Panel(pd.DataFrame({"vix": [np.nan, 11.5]}, index=[pd.Timestamp("2017-02-28"), when]), "live")
    assert stale.warning(panel, when).startswith("stale input, vix comes from its fallback series: fred/VIXCLS")
    panel.frame.loc[when, "vix"] = np.nan
    assert stale.warning(panel, when).startswith("stale input, treated as missing: fred/VIXCLS")


def test_a_stale_series_warns_without_a_crash(trained_home, tiny_experiment, monkeypatch):
    home, _ = trained_home
    monkeypatch.setattr("smallcap_regime.data.freshness.stale_inputs", lambda *_: [VIX])
    out = " ".join(invoke("predict", "--home", str(home), "--experiment", str(tiny_experiment)).split())
    assert ("warning: stale input, treated as missing: fred/VIXCLS (vix): last value 2017-01-25, 65 days old at "
            "2017-03-31 (max age 10d); refresh with `regime data pull`") in out
    assert "for 2017-04..2017-06" in out


def test_a_missing_required_feature_names_the_stale_series(trained_home, tiny_experiment, monkeypatch):
    from smallcap_regime import workflow

    home, result = trained_home
    needed = result.model.required[0]
    real = workflow.build_dataset

    def without_feature(*args, **kwargs):
        data = real(*args, **kwargs)
        data.features.iloc[-1, data.features.columns.get_loc(needed)] = np.nan
        return data

    monkeypatch.setattr(workflow, "build_dataset", without_feature)
    with pytest.raises(RegimeError, match=f"refused the feature row of 2017-03-31: .*{needed}"):
        forecast(home, experiment=str(tiny_experiment), today=FRESH)
    monkeypatch.setattr("smallcap_regime.data.freshness.stale_inputs", lambda *_: [VIX])
    with pytest.raises(StaleInputError, match=r"stale input series: fred/VIXCLS \(vix\).*`regime data pull`"):
        forecast(home, experiment=str(tiny_experiment), today=FRESH)


def test_history_lists_the_calls_of_a_known_fold(trained_home, tiny_experiment):
    home, result = trained_home
    pred = result.backtest.predictions
    fold = pred.loc["1995-01-31", "fold"]  # tiny refits every 60 months from 1990-01: a fold starts 1995-01
    rows = pred[pred["fold"] == fold]
    assert rows.index[0] == pd.Timestamp("1995-01-31") and len(rows) == 60
    calls = history(home, experiment=str(tiny_experiment), start="1995-01", end="1999-12").calls
    assert calls.index.equals(rows.index)
    assert np.allclose(calls["p"], rows["relative.lgbm_cal.p"])
    assert np.allclose(calls["base_rate"], rows["relative.hist_mean.p"])
    above = rows["relative.lgbm_cal.p"] > rows["relative.hist_mean.p"]
    assert (calls["right"] == (above == (rows["relative.up"] == 1))).all()
    first = calls.iloc[0]
    assert first["window"] == "1995-02..1995-04"
    out = invoke("history", "--home", str(home), "--experiment", str(tiny_experiment), "--from", "1995-01",
                 "--to", "1995-03")
    assert "1995-02..1995-04" in out and "1995-04..1995-06" in out and "1995-05..1995-07" not in out
    verdicts = re.findall(r"\b(right|wrong)\b", out.split("━┩")[1].split("└")[0])
    assert verdicts == ["right" if r else "wrong" for r in calls["right"].iloc[:3]]
    text = " ".join(out.split())
    right = int(calls["right"].iloc[:3].sum())
    assert f"3 calls 1995-01-31..1995-03-31, calls against the base rate: right {right} of 3" in text
    assert "regime called (the card's rule): " in text


def test_history_refuses_an_unknown_target(trained_home, tiny_experiment):
    home, _ = trained_home
    with pytest.raises(RegimeError, match="target 'both' is not one of relative, absolute"):
        history(home, experiment=str(tiny_experiment), target="both")
    with pytest.raises(RegimeError, match="--from 'soon' is not a month like 2008-01"):
        history(home, experiment=str(tiny_experiment), start="soon")


def _report(trained_home) -> str:
    import mlflow

    from smallcap_regime.tracking import store

    home, result = trained_home
    store.configure(home)
    path = mlflow.artifacts.download_artifacts(run_id=result.run_id, artifact_path="report.html")
    return open(path, encoding="utf-8").read()


def test_training_logs_a_self_contained_html_report(trained_home):
    from smallcap_regime.evaluation.html_report import SECTIONS

    page = _report(trained_home)
    for sid, title in SECTIONS:
        assert f'<section id="{sid}"><h2>{title}</h2>' in page
    assert page.count('src="data:image/png;base64,') == 4  # timeline, strategies, calibration, beeswarm
    assert not re.search(r"https?://", page)
    assert not re.search(r"""(src|href)=["'](?!data:)""", page)
    assert "for 2017-04..2017-06" in page and "80 % interval" in page
    # issue 21: the regime from skilled targets, rotation status, drivers in words, the one accuracy figure
    _, result = trained_home
    record = result.model.skill["relative"]
    assert "<p>rotation: " in page and "pushing P up:" in page and "pushing P down:" in page
    assert f"<p>relative: calls against the base rate: right {record.calls_right} of {record.calls_made}" in page
    assert "The regime strip uses the card's rule" in page


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_report_renders_in_a_headless_browser(trained_home, tmp_path):
    report = tmp_path / "report.html"
    report.write_text(_report(trained_home), encoding="utf-8")
    shot = tmp_path / "shot.png"
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--no-first-run", f"--screenshot={shot}",
                    "--window-size=1400,3000", report.as_uri()], check=True, timeout=120, capture_output=True)
    from PIL import Image

    with Image.open(shot) as image:
        assert image.size == (1400, 3000)
        assert len(set(image.convert("L").resize((70, 150)).getdata())) > 20  # a page of figures, not a blank
