"""Walk-forward folds: purge, embargo, tiling, validation, and post-processing maps that only see the past.

The fold checks run on a realistic month-end index (1949-01..2017-12). The end-to-end checks run a small
``run_backtest`` (few trees, long refit blocks) on a SYNTHETIC panel built here from a seeded RNG: its numbers mean
nothing about markets, it only exercises the machinery.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from smallcap_regime.data.panel import Panel
from smallcap_regime.evaluation import backtest as bt
from smallcap_regime.evaluation import metrics
from smallcap_regime.evaluation.backtest import _post_process, _realised_before, run_backtest
from smallcap_regime.evaluation.walkforward import PurgedWalkForward, make_folds
from smallcap_regime.experiment import load_experiment
from smallcap_regime.models.options import ModelOptions

from helpers import synthetic_panel, synthetic_predictions, write_experiment


@pytest.fixture(scope="module", autouse=True)
def _single_threaded_blas():
    """OpenBLAS threads only add overhead to these small fits (the L-BFGS of Platt scaling and the logistic
    baseline): limiting them halves a backtest's run time on a 2-core machine."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


INDEX = pd.date_range("1949-01-31", "2017-12-31", freq="ME", name="date")
FIRST_TEST = pd.Timestamp("1975-01-31")
H = 3


def folds_for(embargo: int, **kw):
    args = dict(horizon=H, first_test=FIRST_TEST, refit_every=12, min_train=120, embargo=embargo)
    return make_folds(INDEX, **{**args, **kw})


# ---------------------------------------------------------------------------------------------------------
# make_folds
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("embargo", [0, 1])
def test_training_targets_are_realised_before_every_test_origin(embargo):
    """Purge: the target months t+1..t+h of every training origin end before the first test origin T0, so no
    training label contains a test origin date or any month of a test target window T+1..T+h (T >= T0).

    Convention of evaluation.md: the last training origin is T0 - h - embargo (with no embargo its label ends at
    T0 itself, which is realised at T0), the same bound the calibration maps and the prevailing mean use."""
    folds = folds_for(embargo)
    months = INDEX.to_period("M")  # month numbers (ordinals), so that t + k means k months later
    for fold in folds:
        t0 = fold.test[0]
        assert len(fold.train) >= 120
        assert fold.train.max() == t0 - H - embargo, "the purge plus the embargo, no more and no less"
        train_target_months = {int(months[t].ordinal) + k for t in fold.train for k in range(1, H + 1)}
        test_target_months = {int(months[t].ordinal) + k for t in fold.test for k in range(1, H + 1)}
        assert max(train_target_months) == months[t0].ordinal - embargo
        assert not train_target_months & test_target_months
        # a training label may end in the first test origin's own month (its return is known when the forecast is
        # made, at the end of that month), never later
        shared = train_target_months & set(months[fold.test].asi8)
        assert shared == ({months[t0].ordinal} if embargo == 0 else set())
        # expanding window: everything from the first origin up to the purge
        np.testing.assert_array_equal(fold.train, np.arange(0, t0 - H - embargo + 1))


def test_embargo_removes_exactly_that_many_extra_origins():
    plain = {tuple(f.test): f.train for f in folds_for(0)}
    embargoed = {tuple(f.test): f.train for f in folds_for(1)}
    assert FIRST_TEST in [INDEX[t[0]] for t in set(plain) & set(embargoed)]
    common = set(plain) & set(embargoed)
    assert len(common) >= len(embargoed) - 1  # only the burn-in's first (partial) block may differ
    for test in common:
        np.testing.assert_array_equal(embargoed[test], plain[test][:-1])
    e2 = {tuple(f.test): f.train for f in folds_for(2)}
    for test in set(e2) & set(plain):
        assert len(plain[test]) - len(e2[test]) == 2


@pytest.mark.parametrize("embargo", [0, 1])
@pytest.mark.parametrize("refit", [1, 12, 24, 36])
def test_folds_tile_the_forecast_period_and_a_boundary_falls_on_first_test(embargo, refit):
    folds = folds_for(embargo, refit_every=refit)
    assert [f.fold_id for f in folds] == list(range(len(folds)))
    tests = np.concatenate([f.test for f in folds])
    # contiguous, in order, no overlap, no gap, up to the last origin (whose target is still unknown)
    np.testing.assert_array_equal(tests, np.arange(folds[0].test[0], len(INDEX)))
    for f in folds:
        np.testing.assert_array_equal(f.test, np.arange(f.test[0], f.test[-1] + 1))
        assert len(f.test) <= refit
    assert all(len(f.test) == refit for f in folds[1:-1])
    t0 = INDEX.get_loc(FIRST_TEST)
    assert t0 in [f.test[0] for f in folds]
    # burn-in starts as early as min_train allows: the first fold trains on exactly min_train origins
    assert len(folds[0].train) == 120
    assert folds[0].test[0] == 120 + H + embargo - 1


def test_first_test_between_month_ends_starts_at_the_next_origin():
    folds = folds_for(0, first_test=pd.Timestamp("1975-01-15"))
    assert INDEX.get_loc(FIRST_TEST) in [f.test[0] for f in folds]


def test_start_limits_the_burn_in_and_keeps_the_boundary_on_first_test():
    folds = folds_for(1, start=pd.Timestamp("1970-05-31"))
    assert INDEX[folds[0].test[0]] == pd.Timestamp("1970-05-31")
    assert INDEX.get_loc(FIRST_TEST) in [f.test[0] for f in folds]
    same = folds_for(1, start=FIRST_TEST)  # how the tuner calls it: no burn-in at all
    assert INDEX[same[0].test[0]] == FIRST_TEST


def test_horizon_one_and_a_short_index():
    idx = INDEX[:30]
    folds = make_folds(idx, horizon=1, first_test=idx[20], refit_every=5, min_train=12, embargo=0)
    assert [(f.test[0], f.test[-1]) for f in folds] == [(12, 14), (15, 19), (20, 24), (25, 29)]
    assert [f.train[-1] for f in folds] == [11, 14, 19, 24]  # test start - h


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"horizon": 0}, "horizon must be >= 1, got 0"),
        ({"refit_every": 0}, "refit_every must be >= 1, got 0"),
        ({"embargo": -1}, "embargo must be >= 0, got -1"),
        ({"first_test": pd.Timestamp("2018-01-31")}, "first_test 2018-01-31 is after the last origin 2017-12-31"),
        ({"first_test": pd.Timestamp("1959-01-31")},
         "first_test 1959-01-31 leaves 118 training origins, fewer than min_train=120"),
        ({"min_train": 400}, "fewer than min_train=400"),
        ({"start": pd.Timestamp("1980-01-31")}, "start 1980-01-31 is after first_test 1975-01-31"),
    ],
)
def test_make_folds_validation(kwargs, message):
    args = dict(horizon=H, first_test=FIRST_TEST, refit_every=12, min_train=120, embargo=0)
    with pytest.raises(ValueError, match=message):
        make_folds(INDEX, **{**args, **kwargs})


def test_min_train_boundary():
    """The earliest allowed first_test leaves exactly min_train training origins; one month earlier is refused."""
    folds = make_folds(INDEX, horizon=H, first_test=INDEX[122], min_train=120)
    assert folds[0].test[0] == 122 and len(folds[0].train) == 120
    with pytest.raises(ValueError, match="leaves 119 training origins"):
        make_folds(INDEX, horizon=H, first_test=INDEX[121], min_train=120)


@pytest.mark.parametrize("bad", [INDEX[::-1], INDEX.append(INDEX[-1:])])
def test_make_folds_rejects_unsorted_or_duplicated_index(bad):
    with pytest.raises(ValueError, match="index must be strictly increasing month ends"):
        make_folds(bad, horizon=H, first_test=FIRST_TEST)


# ---------------------------------------------------------------------------------------------------------
# calibration maps see only pairs realised before the fold starts
# ---------------------------------------------------------------------------------------------------------


def test_realised_before_keeps_origins_up_to_start_minus_h():
    idx = INDEX[:20]
    everything = np.ones(20, dtype=bool)
    np.testing.assert_array_equal(np.flatnonzero(_realised_before(idx, everything, 10, 3)), np.arange(0, 8))
    np.testing.assert_array_equal(np.flatnonzero(_realised_before(idx, everything, 10, 1)), np.arange(0, 10))
    forecast = np.zeros(20, dtype=bool)
    forecast[5:] = True  # only forecast origins count; the input mask is not modified
    np.testing.assert_array_equal(np.flatnonzero(_realised_before(idx, forecast, 12, 3)), np.arange(5, 10))
    assert forecast.sum() == 15
    assert not _realised_before(idx, everything, 2, 3).any()


def _fake_predictions(folds, seed: int = 0) -> pd.DataFrame:
    """Raw out-of-sample predictions with some skill, on INDEX (what _raw_predictions would hand over): forecasts
    over-dispersed (the shrinkage has work to do) and over-confident (Platt has work to do)."""
    return synthetic_predictions(folds, INDEX, H, seed=seed, outcome_noise=0.06,
                                 models=(("lgbm", 2.0, 0.02), ("linear", 2.0, 0.05)), logit=40)


@pytest.fixture(scope="module")
def quick_exp():
    exp = load_experiment("quickstart")
    validation = exp.validation.model_copy(update={"oos_start": FIRST_TEST, "refit_every_months": 24,
                                                   "embargo_months": 1})
    return dataclasses.replace(exp, validation=validation)


@pytest.fixture(scope="module")
def post_processed(quick_exp):
    """Fake raw predictions on 24-month folds, post-processed, with every fit_maps call recorded (model, mask)."""
    folds = make_folds(INDEX, horizon=H, first_test=FIRST_TEST, refit_every=24, min_train=120, embargo=1)
    pred = _fake_predictions(folds)
    calls = []
    real_fit_maps = bt.fit_maps

    def spy(frame, target, model, mask, *args):
        calls.append((model, mask.copy()))
        return real_fit_maps(frame, target, model, mask, *args)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bt, "fit_maps", spy)
        _post_process(pred, "relative", folds, quick_exp)
    return folds, pred, calls


def test_every_calibration_map_is_fitted_on_origins_realised_before_its_fold(post_processed):
    folds, pred, calls = post_processed
    per_fold, final = calls[:-1], calls[-1]
    assert [model for model, _ in per_fold] == ["lgbm", "linear"] * len(folds)
    forecast = pred["fold"].notna().to_numpy()
    for k, fold in enumerate(folds):
        for model, mask in per_fold[2 * k: 2 * k + 2]:
            used = np.flatnonzero(mask)
            if len(used):
                assert used.max() <= fold.test[0] - H, f"fold {fold.fold_id} {model} used an unrealised target"
            assert not mask[fold.test].any()
            # ... and it does use every forecast origin realised by then (no pair thrown away)
            np.testing.assert_array_equal(used, np.flatnonzero(forecast[: max(fold.test[0] - H + 1, 0)]))
    # the final map (kept for the next, live forecast): all realised forecast pairs
    assert final[1].sum() == pred["relative.y"].notna().sum() - folds[0].test[0]
    # the later folds really were calibrated (not the base-rate fallback), so the checks have teeth
    assert pred.loc[INDEX[folds[-1].test], "relative.shrink_weight"].between(0.05, 0.95).all()


CAL_COLUMNS = [f"relative.{m}_cal.{k}" for m in ("lgbm", "linear") for k in "fp"]
CAL_COLUMNS += ["relative.lo", "relative.hi", "relative.shrink_weight"]


def _scrambled_post_process(folds, fold, positions, exp, base_rates: bool = False) -> pd.DataFrame:
    """Fold ``fold``'s post-processed forecasts after replacing the targets at ``positions`` with absurd values
    (``base_rates``: and the prevailing mean and base rate recomputed from them, as the backtest would)."""
    pred = _fake_predictions(folds)
    y = pred["relative.y"].to_numpy().copy()
    y[positions] = np.random.default_rng(99).normal(0.5, 1.0, len(positions))  # any use would show
    pred["relative.y"] = y
    pred["relative.up"] = (pred["relative.y"] > 0).astype("float64").where(pred["relative.y"].notna())
    if base_rates:
        pred["relative.hist_mean.f"] = metrics.prevailing_mean(pred["relative.y"], H)
        pred["relative.hist_mean.p"] = metrics.prevailing_mean(pred["relative.up"], H)
    _post_process(pred, "relative", [fold], exp)  # each fold's maps depend only on the frame and its own start
    return pred.loc[INDEX[fold.test], CAL_COLUMNS]


@pytest.mark.parametrize("fold_number", [8, 14, 20, -1])
def test_future_targets_do_not_move_a_folds_calibrated_predictions(quick_exp, post_processed, fold_number):
    """Scrambling the targets of every origin s > T0 - h leaves fold [T0, T1]'s post-processed forecasts unchanged."""
    folds, base, _ = post_processed
    fold = folds[fold_number]
    expected = base.loc[INDEX[fold.test], CAL_COLUMNS]
    assert expected.notna().all().all() and fold.test[0] >= INDEX.get_loc(FIRST_TEST)
    future = np.arange(fold.test[0] - H + 1, len(INDEX) - H)
    pd.testing.assert_frame_equal(_scrambled_post_process(folds, fold, future, quick_exp), expected, check_exact=True)


def test_scrambling_realised_targets_does_move_them(quick_exp, post_processed):
    """The check above is sensitive: the targets realised by T0 (s <= T0 - h) are used, even the latest one."""
    folds, base, _ = post_processed
    fold = folds[14]
    t0 = fold.test[0]
    rows = INDEX[fold.test]
    realised = np.arange(folds[0].test[0], t0 - H + 1)
    changed = _scrambled_post_process(folds, fold, realised, quick_exp)
    assert not np.allclose(changed["relative.lgbm_cal.f"], base.loc[rows, "relative.lgbm_cal.f"])
    # the anchored map reads the labels through its slope (here at its floor) and the base rate it sits on
    moved = _scrambled_post_process(folds, fold, realised, quick_exp, base_rates=True)
    assert not np.allclose(moved["relative.lgbm_cal.p"], base.loc[rows, "relative.lgbm_cal.p"])
    monotone = dataclasses.replace(quick_exp, options=ModelOptions(calibration="monotone", min_slope=0.0))
    none = np.array([], dtype=int)
    assert not np.allclose(_scrambled_post_process(folds, fold, realised, monotone)["relative.lgbm_cal.p"],
                           _scrambled_post_process(folds, fold, none, monotone)["relative.lgbm_cal.p"])
    last_only = _scrambled_post_process(folds, fold, np.array([t0 - H]), quick_exp)
    assert last_only["relative.shrink_weight"].iloc[0] != base.loc[rows[0], "relative.shrink_weight"]


# ---------------------------------------------------------------------------------------------------------
# end to end on a small SYNTHETIC backtest
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_exp(tmp_path_factory):
    """A small experiment: 8-tree models, 36-month refits, OOS from 1975, embargo 1."""
    return load_experiment(write_experiment(tmp_path_factory.mktemp("tiny_exp"), trees=8, oos_start="1975-01",
                                            refit=36, calibration_min_obs=24, seeds=(11, 21)))


@pytest.fixture(scope="module")
def tiny_result(tiny_exp, tmp_path_factory):
    panel = synthetic_panel(5, start="1950-01", end="1992-12")
    return run_backtest(tiny_exp, tmp_path_factory.mktemp("home"), panel=panel)


@pytest.mark.slow
def test_backtest_folds_are_purged(tiny_exp, tiny_result):
    res, h, embargo = tiny_result, tiny_exp.horizon, tiny_exp.validation.embargo_months
    index = res.features.index
    folds = make_folds(index, horizon=h, first_test=tiny_exp.validation.oos_start, refit_every=36, min_train=120,
                       embargo=embargo)
    expected = pd.Series(np.nan, index=index)
    for f in folds:
        expected.iloc[f.test] = f.fold_id
    pd.testing.assert_series_equal(res.predictions["fold"], expected.dropna(), check_names=False)
    fm = res.fold_metrics[res.fold_metrics["target"] == "relative"]
    assert len(fm) >= 5
    for row in fm.itertuples():
        train_end, test_start = pd.Period(row.train_end, "M"), pd.Period(row.test_start, "M")
        assert train_end + h + embargo == test_start, row  # the last training label ends by the first test origin
        assert train_end + h <= test_start
        assert row.n_train == index.get_loc(row.train_end) + 1
    # a fold boundary on the reported out-of-sample start
    assert tiny_exp.validation.oos_start in set(fm["test_start"])
    assert res.predictions.index[res.predictions["oos"]][0] == tiny_exp.validation.oos_start


@pytest.mark.slow
def test_future_data_cannot_change_past_predictions(tiny_exp, tiny_result, tmp_path):
    """Replace every panel value after D with other random numbers: the models, maps, features and benchmarks behind
    the forecasts at origins <= D may only use data up to D, so those rows must not move. D is the first origin of a
    fold, the sharpest place: a model trained on a label ending after D (purge one origin short of t <= D - h), a
    map using such a label, or a prevailing mean one origin too recent would all show."""
    panel = tiny_result.panel.frame
    cut = pd.Timestamp("1978-01-31")
    assert cut in set(tiny_result.fold_metrics["test_start"])
    other = synthetic_panel(77, start="1950-01", end="1992-12").frame
    changed = panel.copy()
    later = changed.index > cut
    changed.loc[later] = other.loc[later].to_numpy()
    assert not np.allclose(changed.loc[later, "small_ret"], panel.loc[later, "small_ret"])
    res = run_backtest(tiny_exp, tmp_path, panel=Panel(frame=changed, source="synthetic"))
    forward_looking = [c for c in res.predictions if c.endswith((".y", ".up")) or c == "tbill"]
    past_a = tiny_result.predictions.loc[:cut].drop(columns=forward_looking)
    past_b = res.predictions.loc[:cut].drop(columns=forward_looking)
    assert past_a.index[-1] == cut and len(past_a) > 200
    # the targets of origins <= D whose windows reach past D did change; nothing that was forecast did
    assert not res.predictions.loc[:cut, "relative.y"].equals(tiny_result.predictions.loc[:cut, "relative.y"])
    pd.testing.assert_frame_equal(past_a, past_b, check_exact=True)
    later_a = tiny_result.predictions.loc[cut:, "relative.lgbm.f"].iloc[1:]
    later_b = res.predictions.loc[cut:, "relative.lgbm.f"].iloc[1:]
    assert not np.allclose(later_a, later_b), "the perturbation must reach the later forecasts"


# ---------------------------------------------------------------------------------------------------------------
# the splitter object


def test_splitter_yields_the_folds_as_position_pairs():
    cv = PurgedWalkForward(horizon=H, first_test=FIRST_TEST, refit_every=24, min_train=120, embargo=1)
    x = pd.DataFrame({"a": np.arange(len(INDEX))}, index=INDEX)
    pairs = list(cv.split(x))
    folds = make_folds(INDEX, horizon=H, first_test=FIRST_TEST, refit_every=24, min_train=120, embargo=1)
    assert cv.get_n_splits(x) == len(pairs) == len(folds)
    for (train, test), fold in zip(pairs, folds, strict=True):
        np.testing.assert_array_equal(train, fold.train)
        np.testing.assert_array_equal(test, fold.test)
        assert train[-1] + H + 1 == test[0]  # purge + embargo


def test_splitter_works_where_scikit_learn_takes_a_cv():
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import cross_val_score

    rng = np.random.default_rng(0)
    x = pd.DataFrame({"a": rng.normal(size=len(INDEX))}, index=INDEX)
    y = pd.Series(rng.normal(size=len(INDEX)), index=INDEX)
    cv = PurgedWalkForward(horizon=H, first_test=FIRST_TEST, refit_every=60)
    scores = cross_val_score(Ridge(), x, y, cv=cv, scoring="neg_mean_squared_error")
    assert len(scores) == cv.get_n_splits(x) and np.isfinite(scores).all()


def test_splitter_prints_its_fold_plan():
    cv = PurgedWalkForward(horizon=H, first_test=FIRST_TEST, refit_every=120, min_train=120, embargo=1)
    plan = cv.plan(INDEX)
    assert list(plan.columns) == ["train_from", "train_to", "n_train", "test_from", "test_to", "n_test"]
    assert (plan["test_from"] > plan["train_to"]).all() and plan["n_test"].sum() <= len(INDEX)
    assert pd.Timestamp(FIRST_TEST).date() in set(plan["test_from"])
    assert repr(cv).startswith("PurgedWalkForward(embargo=1, first_test=")


def test_splitter_needs_dated_rows():
    cv = PurgedWalkForward(horizon=H, first_test=FIRST_TEST)
    with pytest.raises(TypeError, match="needs X indexed by month-end dates"):
        next(cv.split(np.zeros((10, 2))))
    with pytest.raises(ValueError, match="get_n_splits needs X"):
        cv.get_n_splits()
