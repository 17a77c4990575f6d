"""Every model option reaches the shipped model through the one fit: for each option, the final model trained on
the rows of the last backtest fold forecasts exactly what that fold's model forecast (offline sample data)."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from smallcap_regime.evaluation.backtest import _realised_before, fit_maps, run_backtest, walk_forward
from smallcap_regime.experiment import load_experiment
from smallcap_regime.models.bundle import TargetMaps, fit_regime_model
from smallcap_regime.models.calibration import CalibrationMaps, Platt
from smallcap_regime.models.options import ModelOptions
from smallcap_regime.names import TARGETS, col

from conftest import REPO

#: One case per option of ``[options]`` (plus the defaults); a new option adds its case here.
CASES = {
    "defaults": "",
    "drop_families": 'drop_families = ["credit", "seasonality"]',
    "monotone": "monotone = {baa_aaa_spread_bp = 1, rs_mom_12m = -1}",
    # post-processing options: the fold's calibrated forecast and the served one come from the same maps
    "calibration": 'calibration = "platt"',
    "min_slope": 'calibration = "monotone"\nmin_slope = 0.3',
    "train_start": 'train_start = "1960-01"',
    # live files (the offline sample has no book-to-market): the held family becomes model input, constrained
    "valuation": "valuation = true\nmonotone = {smb_btm_spread_log = 1}",
    "recentre_months": "recentre_months = 60",
    "smooth_k": "smooth_k = 3",
}


@pytest.fixture(scope="module")
def live_home(tmp_path_factory, realdata_dir):
    """A home holding the real files to 2018-12, pulled from a loopback server (Ken French and FRED)."""
    from loopback import pull_realdata

    home = tmp_path_factory.mktemp("live") / "home"
    pull_realdata(home, realdata_dir)
    return home


def test_every_option_has_a_case():
    assert set(ModelOptions.model_fields) <= set(CASES)


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_final_model_on_the_last_folds_rows_forecasts_as_that_fold(case, tiny_experiment, tmp_path, request):
    path = tmp_path / f"{case}.toml"
    home = request.getfixturevalue("live_home") if case == "valuation" else None
    live = '[data]\nsource = "live"\n[features]\nspec = "default"\n' if home else ""
    # a refit every 20 years: few folds, the last one trained on most of the sample
    path.write_text(f'extends = "{tiny_experiment.as_posix()}"\n{live}[validation]\nrefit_every_months = 240\n'
                    f"[options]\n{CASES[case]}\n")
    exp = load_experiment(path)
    assert exp.options.active == (case != "defaults")
    result = run_backtest(exp, home, jobs=1)
    if case == "train_start":  # features warm up on the whole panel; rows before the start are left out
        assert result.features.index[0] == pd.Timestamp("1960-01-31")
        assert result.features.loc["1960-01-31"].notna().sum() >= result.features.iloc[-1].notna().sum() - 2
    if case == "valuation":
        from smallcap_regime.features.ranges import plausible_ranges

        assert "smb_btm_spread_log" in result.features and exp.features().name == "default+valuation"
        assert "smb_btm_spread_log" in plausible_ranges(exp.features())  # what training gives the served model
        assert result.features["smb_btm_spread_log"].notna().mean() > 0.9
    fold = walk_forward(exp).folds(result.features.index)[-1]
    train = result.features.index[fold.train]
    test = result.features.iloc[fold.test]
    identity = {t: CalibrationMaps(1.0, Platt(1.0, 0.0), (0.0, 0.0)) for t in TARGETS}
    model = fit_regime_model(result.features.loc[train], result.targets.loc[train], exp.estimators(), identity,
                             exp.horizon, exp.no_call_band)
    values = test.to_numpy(dtype="float64")
    for target in TARGETS:
        f, p = model.raw(values, target)
        np.testing.assert_array_equal(f, result.predictions.loc[test.index, col(target, "lgbm", "f")])
        np.testing.assert_array_equal(p, result.predictions.loc[test.index, col(target, "lgbm", "p")])
    if case == "drop_families":  # the shipped boosters do not read the dropped families
        assert not {"baa_aaa_spread_bp", "fwd_month"} & set(model.inputs["relative"])
    if case in ("monotone", "valuation"):
        assert "monotone_constraints" in model.boosters["relative_regressor"].model_to_string()
    if case == "valuation":
        assert "smb_btm_spread_log" in model.inputs["relative"]
    # and the served path (identity maps) gives the same forecasts, saved and loaded
    loaded = type(model).load(model.save(tmp_path / "bundle"))
    served = loaded.predict(test)
    np.testing.assert_allclose(served["relative_forecast"], result.predictions.loc[test.index, "relative.lgbm.f"],
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(served["p_positive"], result.predictions.loc[test.index, "absolute.lgbm.p"],
                               rtol=0, atol=1e-9)
    if case in ("defaults", "calibration", "min_slope", "recentre_months"):
        _calibrated_as_served(exp, result, fold, test, model)
    if case == "smooth_k":
        _smoothed_as_served(exp, result, fold, test, model)


def _calibrated_as_served(exp, result, fold, test, model) -> None:
    """The last fold's calibrated probabilities are its maps (fitted with the options) applied to its raw ones, and
    the shipped model, carrying the backtest's final maps, applies those maps the same way."""
    pred, val = result.predictions, exp.validation
    full = result.predictions.reindex(result.features.index)
    mask = _realised_before(full.index, full["fold"].notna().to_numpy(), int(fold.test[0]), exp.horizon)
    for target in TARGETS:
        maps = fit_maps(full, target, "lgbm", mask, val.calibration_min_obs, val.interval_coverage, exp.options)
        np.testing.assert_allclose(pred.loc[test.index, col(target, "lgbm_cal", "p")],
                                   maps.platt(pred.loc[test.index, col(target, "lgbm", "p")].to_numpy()), atol=1e-12)
    final = {t: TargetMaps.from_calibration(result.final_maps[t], 0.0, 0.5, 1) for t in TARGETS}
    shipped = copy.copy(model)
    shipped.maps = final
    served = shipped.predict(test)
    raw_p = pred.loc[test.index, col("absolute", "lgbm", "p")].to_numpy()
    np.testing.assert_allclose(served["p_positive"], result.final_maps["absolute"].platt(raw_p), atol=1e-9)
    if exp.options.calibration in ("anchored", "monotone"):
        assert all(result.final_maps[t].platt.a >= exp.options.min_slope for t in TARGETS)


@pytest.mark.slow
def test_the_tuning_objective_fits_the_options_it_would_ship(tmp_path):
    """The inner folds fit through the experiment's estimator: its options change the loss, and the loss of a fold
    is the loss of ``TargetEstimator.fit`` on that fold's rows (offline sample, before oos_start)."""
    from optuna.trial import FixedTrial

    from smallcap_regime.dataset import build_dataset
    from smallcap_regime.models.estimator import TargetEstimator
    from smallcap_regime.tuning import objective, search_space

    text = (REPO / "experiments" / "quickstart.toml").read_text()
    tuning = ('[tuning]\nobjective = "relative.regressor"\nmetric = "mse"\ninner_folds = 2\nn_estimators = [10, 20]\n')
    losses = {}
    params = {"n_estimators": 15}
    for case, body in (("defaults", ""), ("drop_families", 'drop_families = ["technical"]')):
        path = tmp_path / f"{case}.toml"
        path.write_text(text[: text.index("[tuning]")] + f"[options]\n{body}\n" + tuning)
        exp = load_experiment(path)
        settings = search_space(exp)
        data = objective.inner_data(build_dataset(exp, before=exp.validation.oos_start), settings)
        assert data.estimator.options == exp.options
        fixed = exp.models["relative"].regressor
        losses[case] = objective.make_objective(data, settings, fixed)(FixedTrial(params))
        fold = data.folds[0]
        keep = data.y.iloc[fold.train].notna().to_numpy()
        model = TargetEstimator({**fixed, **params}, {}, exp.options, exp.estimator("relative").families).fit(
            data.features.iloc[fold.train][keep], data.y.iloc[fold.train][keep].to_numpy())
        realised = data.y.iloc[fold.test].notna().to_numpy()
        mse = float(np.mean((data.y.iloc[fold.test][realised].to_numpy()
                             - model.predict(data.features.iloc[fold.test][realised])) ** 2))
        assert mse == objective._fold_score(data, fold, {**fixed, **params}, "regressor")
    assert losses["defaults"] != losses["drop_families"]


def _smoothed_as_served(exp, result, fold, test, model) -> None:
    """With ``smooth_k = 3`` the fold's forecast at an origin is the mean of its calibrated forecasts for that origin
    and the two before it (the fold's model on the months before its block, too), and the shipped model, sent those
    months first, answers the same number for every origin of the block."""
    from smallcap_regime.evaluation.backtest import lead_rows
    from smallcap_regime.models.calibration import trailing_mean

    pred, val, k = result.predictions, exp.validation, exp.options.smooth_k
    full = pred.reindex(result.features.index)
    mask = _realised_before(full.index, full["fold"].notna().to_numpy(), int(fold.test[0]), exp.horizon)
    shipped = copy.copy(model)
    shipped.meta = {"options": exp.options.model_dump()}
    assert shipped.smooth_k == 3
    maps = {t: fit_maps(full, t, "lgbm", mask, val.calibration_min_obs, val.interval_coverage, exp.options)
            for t in TARGETS}
    shipped.maps = {t: TargetMaps.from_calibration(maps[t], 0.0, 0.5, 1) for t in TARGETS}
    rows = result.features.iloc[np.r_[lead_rows(fold, k), fold.test]]
    served = shipped.predict(rows).iloc[k - 1:]
    for target, column in (("relative", "p_outperform"), ("absolute", "p_positive")):
        backtest = pred.loc[test.index, col(target, "lgbm_cal", "p")].to_numpy()
        np.testing.assert_allclose(served[column].to_numpy(), backtest, rtol=0, atol=1e-12)
        # and it is a smoothed forecast: not the origin's own calibrated one
        _, raw_p = model.raw(rows.to_numpy(dtype="float64"), target)
        own = maps[target].platt(raw_p)[k - 1:]
        np.testing.assert_allclose(trailing_mean(maps[target].platt(raw_p), k)[k - 1:], backtest, atol=1e-12)
        assert np.abs(own - backtest).max() > 1e-4
