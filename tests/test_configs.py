"""Configs are validated at load against one schema; messages name the file, the table and the key."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from smallcap_regime.errors import ConfigError
from smallcap_regime.experiment import load_experiment
from smallcap_regime.models.lgbm import load_model_spec

from helpers import write_experiment


def _experiment(tmp_path, text: str):
    path = tmp_path / "exp.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "message"), [
    ('extends = "quickstart"\n[validation]\nrefit_every_month = 6\n',
     r"\[validation\]: unknown key 'refit_every_month'; expected one of: oos_start, refit_every_months, "
     r"min_train_months, embargo_months, calibration_min_obs, interval_coverage"),
    ('extends = "quickstart"\n[registry]\nprimary_metric = "relative.lgbm_cal.brier_skil"\n',
     r"\[registry\]: primary_metric = 'relative.lgbm_cal.brier_skil': 'relative.lgbm_cal.brier_skil' is not "
     r"'<target>.<model>.<metric>'"),
    ('extends = "quickstart"\n[registry]\nprimary_metric = "relative.xgb.auc"\n', r"model in lgbm, lgbm_cal"),
    ('extends = "quickstart"\n[strategy]\ncost_bp = "10"\n', r"\[strategy\]: cost_bp = '10': Input should be a "
                                                             r"valid number"),
    ('extends = "quickstart"\n[strategy]\nrelative_short_side = "long"\n', r"relative_short_side = 'long'"),
    ('extends = "quickstart"\n[validation]\ninterval_coverage = 1.5\n', r"interval_coverage = 1.5: Input should "
                                                                        r"be less than 1"),
    ('extends = "quickstart"\n[validation]\noos_start = "someday"\n', r"oos_start = 'someday': 'someday' is not a "
                                                                      r"month like '1990-01'"),
    ('extends = "quickstart"\n[data]\nsource = "web"\n', r"\[data\]: source = 'web': Input should be 'live' or "
                                                         r"'sample'"),
    ('extends = "quickstart"\nfoo = 1\n', r"exp.toml: unknown key 'foo'; expected one of: description, data"),
    ('extends = "quickstart"\n[tuning]\nobjective = "relative.ranker"\n', r"\[tuning\]: objective must be one of"),
    ('[data]\nsource = "sample"\n', r"exp.toml: missing section \[features\]"),
    ('extends = "quickstart"\n[features]\nhorizon_months = 0\n', r"horizon_months = 0: Input should be greater "
                                                                 r"than or equal to 1"),
    ('extends = "nope"\n', r"no experiments config named 'nope'"),
    ('extends = 3\n', r"extends must be the name or path of another experiment, got 3"),
])
def test_experiment_errors_at_load(tmp_path, text, message):
    path = _experiment(tmp_path, text)
    with pytest.raises(ConfigError, match=message):
        load_experiment(path)


def test_extends_overrides_only_the_keys_given(tmp_path):
    base = load_experiment("quickstart")
    child = load_experiment(_experiment(tmp_path, 'extends = "quickstart"\n[validation]\noos_start = "1980-01"\n'))
    assert child.validation.oos_start.strftime("%Y-%m") == "1980-01"
    assert child.validation.refit_every_months == base.validation.refit_every_months
    assert child.tuning == base.tuning and child.models == base.models and child.name == "exp"


def test_extends_cycle_is_an_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "a.toml").write_text('extends = "b"\n')
    (tmp_path / "experiments" / "b.toml").write_text('extends = "a"\n')
    with pytest.raises(ConfigError, match=r"extends forms a cycle \(a -> b -> a\)"):
        load_experiment("a")


def test_live_holds_only_what_differs_from_quickstart():
    live, quick = load_experiment("live"), load_experiment("quickstart")
    assert live.raw.keys() >= quick.raw.keys()
    assert (live.data_source, live.feature_spec, live.validation.oos_start.year) == ("live", "default", 1990)
    assert live.tuning == quick.tuning and live.primary_metric == quick.primary_metric


def test_a_bad_primary_metric_fails_before_any_work(tmp_path, home):
    from typer.testing import CliRunner

    from smallcap_regime.cli import app

    path = write_experiment(tmp_path)
    path.write_text(path.read_text().replace('"relative.lgbm_cal.brier_skill"', '"relative.lgbm_cal.sharpe"'))
    result = CliRunner().invoke(app, ["train", str(path), "--home", str(home)])
    assert result.exit_code != 0
    assert isinstance(result.exception, ConfigError)
    assert "primary_metric = 'relative.lgbm_cal.sharpe'" in str(result.exception)
    assert not (home / "mlflow.db").exists()  # nothing was run or registered


@pytest.mark.parametrize(("text", "message"), [
    ('target = "relative"\n[regressor]\nseed = 1\n', r"missing key 'classifier'"),
    ('target = "relativ"\n[regressor]\nseed = 1\n[classifier]\nseed = 2\n', r"target = 'relativ'"),
    ('target = "relative"\n[regressor]\nn_estimators = 5\n[classifier]\nseed = 2\n',
     r"\[regressor\]: needs an integer 'seed' so reruns are identical|regressor = .*needs an integer 'seed'"),
    ('target = "relative"\nseeds = 1\n[regressor]\nseed = 1\n[classifier]\nseed = 2\n',
     r"unknown key 'seeds'; expected one of: description, target, regressor, classifier"),
])
def test_model_spec_errors_at_load(tmp_path, text, message):
    path = tmp_path / "spec.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(str(path)) + ".*(" + message + ")"):
        load_model_spec(path)


def test_importing_the_package_changes_no_global_state():
    code = ("import os, sys; before = dict(os.environ); import smallcap_regime as s; "
            "import smallcap_regime.evaluation.plots, smallcap_regime.tracking.store; "
            "assert dict(os.environ) == before, set(os.environ) ^ set(before); "
            "assert 'matplotlib.pyplot' not in sys.modules; "
            "assert all(callable(getattr(s, n)) for n in s.__all__); print(sorted(s.__all__))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(["backtest", "build_dataset", "forecast", "load_experiment", "run_backtest",
                                      "train", "tune"])
