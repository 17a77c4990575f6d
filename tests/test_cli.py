"""The thin CLI: features, backtest and tune commands and their user-facing errors (offline sample)."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from typer.testing import CliRunner

from smallcap_regime.cli import app, main
from smallcap_regime.errors import RegimeError
from smallcap_regime.workflow import as_of_month_end

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, list(args), terminal_width=200)


def test_features_as_of_shows_the_row_and_writes_the_catalogue(home, tmp_path):
    catalogue = tmp_path / "features.md"
    result = invoke("features", "--home", str(home), "--as-of", "2016-06", "--catalogue", str(catalogue))
    assert result.exit_code == 0, result.output
    assert "features at 2016-06-30 (sample spec, sample data)" in result.output
    assert "offline sample" in result.output
    assert "coverage per family" in result.output
    flat = " ".join(result.output.split())
    assert "valuation: unavailable: no book-to-market in the offline sample" in flat
    assert "valuation reading: no book-to-market data (btm_size_q1, btm_size_q5) in this panel" in flat
    text = catalogue.read_text()
    assert text.startswith("# Feature catalogue: sample")
    assert "| `aaa_chg_3m_bp` | 3-month change in Aaa corporate yield | yields | basis points |" in text
    assert "PROXY" in text


def test_as_of_resolution():
    index = pd.date_range("1990-01-31", "2000-12-31", freq="ME")
    assert as_of_month_end(index, "1995-06") == pd.Timestamp("1995-06-30")
    assert as_of_month_end(index, "1995-06-15") == pd.Timestamp("1995-05-31")
    assert as_of_month_end(index, "1995-06-30") == pd.Timestamp("1995-06-30")
    with pytest.raises(RegimeError, match=r"as_of 1800-01 is outside the data \(1990-01-31..2000-12-31\)"):
        as_of_month_end(index, "1800-01")
    with pytest.raises(RegimeError, match="is not a date like"):
        as_of_month_end(index, "soon")


def test_user_errors_exit_2_without_traceback(home, monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["regime", "features", "--home", str(home), "--source", "live"])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "no live data in the cache" in err and "regime data pull" in err
    assert "Traceback" not in err


def test_unknown_experiment_lists_the_available_ones(home, monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["regime", "backtest", "nope", "--home", str(home)])
    with pytest.raises(SystemExit):
        main()
    assert "no experiments config named 'nope'; available: live, quickstart" in capsys.readouterr().err


@pytest.mark.slow
def test_backtest_command_writes_predictions_metrics_and_plots(home, tiny_experiment):
    result = invoke("backtest", str(tiny_experiment), "--home", str(home))
    assert result.exit_code == 0, result.output
    assert "relative: point forecasts" in result.output and "timing strategy" in result.output
    (run,) = list((home / "runs" / "tiny").iterdir())
    assert f"report: {run / 'report.html'}" in result.output
    for name in ("predictions.parquet", "metrics.csv", "fold_metrics.csv", "decade_metrics.csv",
                 "strategy_metrics.csv", "strategies.png", "calibration.png", "regimes.png", "summary.json",
                 "beeswarm.png", "report.html"):
        assert (run / name).stat().st_size > 0, name
    predictions = pd.read_parquet(run / "predictions.parquet")
    assert predictions.loc[predictions["oos"], "relative.lgbm_cal.p"].between(0, 1).all()


def test_help_texts_are_not_mangled_by_markup():
    result = runner.invoke(app, ["backtest", "--help"], terminal_width=80)
    assert "<home>/runs/<experiment>/<time>/" in result.output
    result = runner.invoke(app, ["tune", "--help"], terminal_width=80)
    assert "<experiment>-<objective>" in result.output


def test_tables_print_counts_as_integers_and_flags_as_flags():
    from rich.console import Console

    from smallcap_regime.display import feature_value, frame_table

    frame = pd.DataFrame({"R2_OS": [0.0512, 0.0], "n": [504.0, 504.0], "stale": [True, False]},
                         index=pd.Index(["lgbm_cal", "hist_mean"], name="model"))
    console = Console(width=80, record=True)
    console.print(frame_table(frame, index=True, digits=3))
    text = console.export_text()
    assert "504 " in text and "504.0" not in text and "0.051" in text and "yes" in text and "no" in text
    assert [feature_value("fwd_3m_has_january_flag", 1.0), feature_value("aaa_chg_1m_bp", 3.0),
            feature_value("hml_mom_3m", -0.07566)] == ["yes", "3", "-0.0757"]


@pytest.mark.slow
def test_tune_command_runs_trials_and_prints_the_train_hint(home, tiny_experiment):
    text = tiny_experiment.read_text() + '''
[tuning]
objective = "relative.regressor"
metric = "mse"
inner_folds = 2
n_estimators = [10, 20]
num_leaves = [3, 7]
learning_rate = [0.05, 0.1]
'''
    path = tiny_experiment.with_name("tiny_tune.toml")
    path.write_text(text)
    result = invoke("tune", str(path), "--trials", "2", "--home", str(home))
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())  # soft-wrapped lines
    assert "tuning relative.regressor of tiny_tune on mse (lower is better) over 2 inner folds before 1990-01" in out
    # the metric by name, the best trial next to the model spec's own parameters
    assert re.search(r"best trial \d: mse [\d.e-]+ vs [\d.e-]+ with the default parameters \([+-][\d.e-]+; lower "
                     r"is better\)", out), out
    assert "best parameters: {" in out
    assert f"see it: optuna-dashboard {home / 'tuning' / 'journal.log'} (pip install '.[dashboard]')" in out
    assert f"regime train {path} --params-from-study tiny_tune-relative.regressor" in result.output
