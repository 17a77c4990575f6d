"""Purged walk-forward backtest of the LightGBM models against baselines on identical folds.

For each target (relative, absolute) and each fold, four models are fitted on the purged training window: the
LightGBM regressor and classifier and the linear baselines (ridge, logistic). Their raw test forecasts are then
post-processed fold by fold with maps fitted only on *earlier* out-of-sample pairs whose targets were realised
before the fold starts: point forecasts shrunk toward the prevailing mean, probabilities Platt-scaled, and
split-conformal intervals from earlier residuals. Raw and post-processed versions are reported side by side, next
to the prevailing (historical) mean / base rate and trailing-momentum baselines, overall, per decade and per fold.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from ..data import Panel
from ..dataset import Dataset, build_dataset
from ..experiment import Experiment
from ..features.ops import compound
from ..models.baselines import fit_linear_baselines
from ..models.calibration import CalibrationMaps, fit_calibration, shrink, trailing_mean
from ..models.options import ModelOptions
from ..models.regime import regime_labels
from ..names import FITTED, MODELS, TARGETS, col, tbill_column
from ..processes import die_with_parent
from . import metrics as M
from . import strategies
from .record import skilled_regimes
from .walkforward import Fold, PurgedWalkForward


@dataclass
class BacktestResult:
    """Everything a backtest produced. Prediction columns are named ``<target>.<model>.<kind>``."""

    experiment: Experiment
    panel: Panel
    features: pd.DataFrame
    targets: pd.DataFrame
    predictions: pd.DataFrame
    metrics: pd.DataFrame
    decade_metrics: pd.DataFrame
    fold_metrics: pd.DataFrame
    strategy_returns: pd.DataFrame
    strategy_metrics: pd.DataFrame
    final_maps: dict[str, CalibrationMaps]
    timings: dict[str, float]

    @property
    def oos(self) -> pd.DataFrame:
        """Predictions at reported out-of-sample origins (realised or not)."""
        return self.predictions[self.predictions["oos"]]


def trailing_return(panel: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """Compounded returns over the ``horizon`` months ending at each origin (known at the origin)."""
    small, large = compound(panel["small_ret"], horizon), compound(panel["large_ret"], horizon)
    return pd.DataFrame({"relative": small - large, "absolute": small})


def fit_fold_models(x: np.ndarray, y: np.ndarray, y_up: np.ndarray, x_test: np.ndarray, exp: Experiment,
                    target: str, binned: dict | None = None,
                    feature_names: list[str] | None = None) -> dict[str, np.ndarray]:
    """Fit the models of one target on one training window and forecast its test block.

    Parameters
    ----------
    x : training features, shape (n_train, n_features), NaN allowed.
    y : realised target (decimal return), shape (n_train,).
    y_up : its 0/1 label, shape (n_train,).
    x_test : features of the test block, shape (n_test, n_features).
    binned : LightGBM Datasets already binned from this ``x`` (:meth:`TargetEstimator.fit`).
    feature_names : names of the columns of ``x`` (needed by the ``[options]`` that name features).

    Returns
    -------
    ``{"lgbm.f", "lgbm.p", "linear.f", "linear.p"}`` -> forecasts of shape (n_test,). The linear baselines see the
    columns the LightGBM models use. With one class only in the window both probabilities are that class: the
    honest answer, and no classifier can be fitted.
    """
    model = exp.estimator(target).fit(x, y, y_up, feature_names=feature_names, binned=binned)
    linear = fit_linear_baselines(model.inputs(x), y, y_up, exp.ridge_alpha, exp.logistic_c)
    out: dict[str, np.ndarray] = {"lgbm.f": model.predict(x_test), "lgbm.p": model.predict_proba(x_test)[:, 1]}
    out["linear.f"], linear_p = linear.predict(model.inputs(x_test))
    out["linear.p"] = out["lgbm.p"] if linear_p is None else linear_p
    return out


def lead_rows(fold: Fold, smooth_k: int = 1) -> np.ndarray:
    """Row positions of the ``smooth_k - 1`` origins before a fold's test block, which its models also forecast for
    ``[options] smooth_k`` (features known by then, targets purged from the training window); empty without it."""
    start = int(fold.test[0])
    return np.arange(max(start - smooth_k + 1, 0), start)


def _fit_fold(fold: Fold, exp: Experiment, x: np.ndarray, labels: dict[str, tuple[np.ndarray, np.ndarray]],
              feature_names: list[str] | None = None) -> dict[str, np.ndarray]:
    """Raw forecasts ``{"<target>.<model>.<f|p>": (n_rows,)}`` of one fold on its :func:`lead_rows` and test block
    (a worker process's task).

    ``x`` is the feature matrix (n_origins, n_features); ``labels`` maps each target to its decimal return and
    0/1 label over all origins (NaN where not realised).
    """
    out = {}
    binned: dict[bytes, dict] = {}  # targets realised on the same rows share their binned LightGBM Datasets
    for target, (y, y_up) in labels.items():
        rows = fold.train[~np.isnan(y[fold.train])]
        fitted = fit_fold_models(x[rows], y[rows], y_up[rows].astype(int),
                                 x[np.r_[lead_rows(fold, exp.options.smooth_k), fold.test]], exp, target,
                                 binned.setdefault(rows.tobytes(), {}), feature_names)
        out.update({col(target, name): values for name, values in fitted.items()})
    return out


def default_jobs() -> int:
    """Worker processes for the folds: the cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _init_worker() -> None:
    """Worker initialiser: one BLAS thread per process, as in the parent (the processes are the parallelism); and
    the worker ends with its parent (a forked worker holds its own end of the task queue: when the parent is killed,
    SIGKILL or the OOM killer, it would otherwise wait on that queue forever, holding the data's memory)."""
    threadpool_limits(limits=1)
    die_with_parent()


def fit_maps(pred: pd.DataFrame, target: str, model: str, mask: np.ndarray, min_obs: int,
             coverage: float, options: ModelOptions | None = None) -> CalibrationMaps:
    """:func:`~smallcap_regime.models.calibration.fit_calibration` of one model on the rows in ``mask``, with the
    experiment's calibration options."""
    options = options or ModelOptions()
    names = [col(target, model, "f"), col(target, model, "p"), col(target, "y"), col(target, "up"),
             col(target, "hist_mean", "f"), col(target, "hist_mean", "p")]
    forecast, raw_p, y, up, mean, base_rate = pred[names].to_numpy(dtype="float64")[mask].T
    return fit_calibration(forecast, raw_p, y, up, mean, base_rate, min_obs, coverage,
                           method=options.calibration, min_slope=options.min_slope,
                           recentre_months=options.recentre_months)


def _realised_before(index: pd.DatetimeIndex, forecast_mask: np.ndarray, start_pos: int, horizon: int) -> np.ndarray:
    """Forecast origins whose targets were realised by the origin at ``start_pos`` (s <= start - h)."""
    mask = forecast_mask.copy()
    mask[max(start_pos - horizon + 1, 0):] = False
    return mask


def walk_forward(exp: Experiment) -> PurgedWalkForward:
    """The experiment's purged walk-forward splitter (refit cadence, minimum history, embargo, OOS start)."""
    val = exp.validation
    return PurgedWalkForward(horizon=exp.horizon, first_test=val.oos_start, refit_every=val.refit_every_months,
                             min_train=val.min_train_months, embargo=val.embargo_months)


def run_backtest(exp: Experiment, home: Path | None = None, *, panel: Panel | None = None,
                 dataset: Dataset | None = None, on_fold: Callable[[int, int], None] | None = None,
                 jobs: int | None = None) -> BacktestResult:
    """Run the purged walk-forward for both targets.

    Parameters
    ----------
    exp : the experiment (data source, features, models, validation, costs).
    home : home dir (live data are read from its cache).
    panel : a prebuilt panel (tests); default: load it as the experiment says.
    dataset : prebuilt features and targets (:func:`~smallcap_regime.dataset.build_dataset`); default: build them.
    on_fold : progress callback ``(done, total)`` called after each fold.
    jobs : worker processes fitting folds in parallel (default :func:`default_jobs`; 1 = in this process). Every
        fold is fitted the same way wherever it runs, so the result does not depend on ``jobs``.
    """
    t_start = time.perf_counter()
    data = dataset or build_dataset(exp, home=home, panel=panel)
    features, targets = data.features, data.targets
    t_features = time.perf_counter()
    h = exp.horizon
    val = exp.validation
    folds = walk_forward(exp).folds(features.index)
    # small linear algebra (ridge, logistic, Platt) pays more for BLAS thread start-up than it gains
    with threadpool_limits(limits=1):
        pred, context = _raw_predictions(exp, data, folds, on_fold, jobs or default_jobs())
        t_fit = time.perf_counter()
        trailing = trailing_return(data.panel.frame, h)
        pred["tbill"] = targets[tbill_column(h)]
        final_maps = {}
        for target in TARGETS:
            momentum = trailing[target]
            pred[col(target, "momentum", "f")] = momentum
            pred[col(target, "momentum", "p")] = (momentum > 0).astype("float64").where(momentum.notna())
            final_maps[target] = _post_process(pred, target, folds, exp, context)

    # each probability read against the base rate known at its origin, as the deployed model reads its own
    regimes = regime_labels(pred[col("relative", "lgbm_cal", "p")], pred[col("absolute", "lgbm_cal", "p")],
                            exp.no_call_band, pred[col("relative", "hist_mean", "p")],
                            pred[col("absolute", "hist_mean", "p")])
    pred = pred.join(regimes)
    pred["oos"] = pred.index >= val.oos_start
    pred = pred[pred["fold"].notna()]

    metrics, decade, strat_returns, strat_metrics = _evaluate(pred, exp)
    # the regime from the targets with demonstrated skill, the rule the forecast card uses
    pred = skilled_regimes(pred, metrics, final_maps, exp.no_call_band, exp.horizon,
                           exp.validation.interval_coverage)
    fold_metrics = _fold_metrics(pred, folds, features.index, exp)
    timings = {"features_s": t_features - t_start, "fit_s": t_fit - t_features,
               "total_s": time.perf_counter() - t_start, "folds": float(len(folds))}
    return BacktestResult(exp, data.panel, features, targets, pred, metrics, decade, fold_metrics, strat_returns,
                          strat_metrics, final_maps, timings)


def _raw_predictions(exp: Experiment, data: Dataset, folds: list[Fold], on_fold: Callable[[int, int], None] | None,
                     jobs: int) -> tuple[pd.DataFrame, dict[int, dict[str, np.ndarray]]]:
    """Targets, prevailing means and the raw fold forecasts of the fitted models, one row per origin; and per fold
    its models' raw forecasts of the ``smooth_k - 1`` origins before its test block (empty without smoothing)."""
    h, features = exp.horizon, data.features
    pred = pd.DataFrame(index=features.index)
    pred["fold"] = np.nan
    labels = {}
    for target in TARGETS:
        y, y_up = data.target(target), data.target(target, label=True)
        labels[target] = (y.to_numpy(dtype="float64"), y_up.to_numpy(dtype="float64"))
        pred[col(target, "y")] = y
        pred[col(target, "up")] = y_up
        pred[col(target, "hist_mean", "f")] = M.prevailing_mean(y, h)
        pred[col(target, "hist_mean", "p")] = M.prevailing_mean(y_up, h)
    # raw forecasts are gathered in arrays and joined once: no per-fold pandas assignment
    raw = {col(target, model, kind): np.full(len(features), np.nan)
           for target in TARGETS for model in FITTED for kind in ("f", "p")}
    fold_id = np.full(len(features), np.nan)
    context: dict[int, dict[str, np.ndarray]] = {}
    task = partial(_fit_fold, exp=exp, x=features.to_numpy(dtype="float64"), labels=labels,
                   feature_names=[str(c) for c in features.columns])
    jobs = max(1, min(jobs, len(folds)))
    if jobs == 1:
        results = map(task, folds)
    else:
        # fork: workers start at once with the model code imported, and a script calling this without an
        # `if __name__ == "__main__"` guard still works (spawn and forkserver re-run the caller's main module).
        # Workers fit with one LightGBM and one BLAS thread, so no OpenMP or BLAS pool is needed after the fork.
        # Results come back in fold order, whichever worker finishes first.
        pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork"),
                                   initializer=_init_worker)
        results = pool.map(task, folds)  # type: ignore[assignment]  # an iterator of the same items as map()
    try:
        for done, (fold, forecasts) in enumerate(zip(folds, results), start=1):
            fold_id[fold.test] = fold.fold_id
            n_context = len(lead_rows(fold, exp.options.smooth_k))
            for name, values in forecasts.items():
                raw[name][fold.test] = values[n_context:]
            if n_context:
                context[fold.fold_id] = {name: values[:n_context] for name, values in forecasts.items()}
            if on_fold:
                on_fold(done, len(folds))
    finally:
        if jobs > 1:
            pool.shutdown(cancel_futures=True)
    pred["fold"] = fold_id
    pred = pd.concat([pred, pd.DataFrame(raw, index=features.index)], axis=1)
    order = ["fold"] + [col(target, *name) for target in TARGETS for name in
                        (("y",), ("up",), ("hist_mean", "f"), ("hist_mean", "p"),
                         *((model, kind) for model in FITTED for kind in ("f", "p")))]
    return pred[order], context


def _post_process(pred: pd.DataFrame, target: str, folds: list[Fold], exp: Experiment,
                  context: dict[int, dict[str, np.ndarray]] | None = None) -> CalibrationMaps:
    """Fill ``<target>.<model>_cal.{f,p}`` and the interval fold by fold; return the maps fitted on everything.

    With ``[options] smooth_k`` > 1 each calibrated forecast is the mean over its origin and the ``smooth_k - 1``
    before it of the fold's calibrated forecasts (``context``: the fold models' raw forecasts of the origins before
    its test block, from :func:`_raw_predictions`). The maps are fitted on the unsmoothed raw pairs either way."""
    k = exp.options.smooth_k

    def smoothed(earlier: np.ndarray, own: np.ndarray) -> np.ndarray:  # a block's forecasts, averaged over k months
        return trailing_mean(np.r_[earlier, own], k)[len(earlier):]

    h, val = exp.horizon, exp.validation
    forecast_mask = pred["fold"].notna().to_numpy()
    models = FITTED
    mean = pred[col(target, "hist_mean", "f")].to_numpy(dtype="float64")
    raw = {model: (pred[col(target, model, "f")].to_numpy(dtype="float64"),
                   pred[col(target, model, "p")].to_numpy(dtype="float64")) for model in models}
    # filled as arrays and joined once: per-fold pandas assignment cost more than the calibration fits
    out = {col(target, f"{model}_cal", kind): np.full(len(pred), np.nan) for model in models for kind in "fp"}
    for name in ("lo", "hi", "shrink_weight"):
        out[col(target, name)] = np.full(len(pred), np.nan)
    for fold in folds:
        mask = _realised_before(pred.index, forecast_mask, int(fold.test[0]), h)
        rows = fold.test
        lead = lead_rows(fold, k)  # the origins before the block a smoothed forecast averages
        before = (context or {}).get(fold.fold_id, {})
        for model in models:
            maps = fit_maps(pred, target, model, mask, val.calibration_min_obs, val.interval_coverage, exp.options)
            f, p = raw[model]
            shrunk = shrink(f[rows], mean[rows], maps.shrink_weight)
            prob = maps.platt(p[rows])
            if len(lead):  # the fold's own model and maps on the k - 1 origins before the block, then the mean
                shrunk = smoothed(shrink(before[col(target, model, "f")], mean[lead], maps.shrink_weight), shrunk)
                prob = smoothed(maps.platt(before[col(target, model, "p")]), prob)
            out[col(target, f"{model}_cal", "f")][rows] = shrunk
            out[col(target, f"{model}_cal", "p")][rows] = prob
            if model == "lgbm":
                out[col(target, "lo")][rows] = shrunk + maps.interval[0]
                out[col(target, "hi")][rows] = shrunk + maps.interval[1]
                out[col(target, "shrink_weight")][rows] = maps.shrink_weight
    for name, values in out.items():
        pred[name] = values
    everything = forecast_mask & pred[col(target, "y")].notna().to_numpy()
    return fit_maps(pred, target, "lgbm", everything, val.calibration_min_obs, val.interval_coverage, exp.options)


def model_report(frame: pd.DataFrame, target: str, model: str, horizon: int) -> dict[str, float]:
    """Regression and classification metrics of one model on the rows of ``frame``."""
    reg = M.regression_report(frame[col(target, "y")], frame[col(target, model, "f")],
                              frame[col(target, "hist_mean", "f")], horizon)
    clf = M.classification_report(frame[col(target, "up")], frame[col(target, model, "p")],
                                  frame[col(target, "hist_mean", "p")])
    out = {k: v for k, v in reg.items() if k not in ("n", "n_nonoverlap")}
    out["hit_rate_sign"] = out.pop("hit_rate")
    out.update({k: v for k, v in clf.items() if k != "n"})
    out["n"] = reg["n"]
    return out


def _report_of(frame: pd.DataFrame, *, target: str, model: str, horizon: int) -> dict[str, float]:
    return model_report(frame, target, model, horizon)


def _strategy_p(frame: pd.DataFrame, target: str, name: str) -> pd.Series:
    if name == "buy_and_hold":
        return pd.Series(1.0, index=frame.index)
    return frame[col(target, name, "p")]


STRATEGIES = ("lgbm_cal", "linear_cal", "momentum", "hist_mean", "buy_and_hold")


def reported_models(exp: Experiment, target: str) -> tuple[str, ...]:
    """Models in the metrics frame (:data:`MODELS`, the same for every experiment and target)."""
    return MODELS


def _evaluate(pred: pd.DataFrame, exp: Experiment):
    h = exp.horizon
    oos = pred[pred["oos"]]
    rows, decade_rows = [], []
    for target in TARGETS:
        for model in reported_models(exp, target):
            rows.append({"target": target, "model": model, **model_report(oos, target, model, h)})
            by_dec = M.by_decade(oos, partial(_report_of, target=target, model=model, horizon=h))
            decade_rows.append(by_dec.assign(target=target, model=model).reset_index())
    metrics = pd.DataFrame(rows).set_index(["target", "model"])
    decade = pd.concat(decade_rows).set_index(["target", "model", "decade"])

    returns, stats = [], []
    ppy = 12 / h
    for target in TARGETS:
        for name in STRATEGIES:
            p = _strategy_p(oos, target, name)
            if target == "relative":
                r = strategies.relative_strategy_returns(oos[col("relative", "y")], p, h, exp.cost_bp,
                                                         exp.relative_short_side)
                excess = r["net"]
            else:
                r = strategies.absolute_strategy_returns(oos[col("absolute", "y")], p, oos["tbill"], h, exp.cost_bp)
                excess = r["excess"]
            returns.append(r.assign(target=target, strategy=name, excess=excess).reset_index())
            perf = strategies.performance(excess, ppy, r["position"])
            perf["cost_bp_total"] = float(r["cost"].sum() * 1e4)
            stats.append({"target": target, "strategy": name, **perf})
    return (metrics, decade, pd.concat(returns, ignore_index=True),
            pd.DataFrame(stats).set_index(["target", "strategy"]))


def _fold_metrics(pred: pd.DataFrame, folds: list[Fold], index: pd.DatetimeIndex, exp: Experiment) -> pd.DataFrame:
    rows = []
    for fold in folds:
        block = pred.loc[index[fold.test]]
        if not block["oos"].any():
            continue
        for target in TARGETS:
            realised = block[block[col(target, "y")].notna()]
            row = {"fold": fold.fold_id, "target": target, "test_start": index[fold.test[0]],
                   "test_end": index[fold.test[-1]], "train_end": index[fold.train[-1]], "n_train": len(fold.train),
                   "n_test": len(realised), "shrink_weight": float(block[col(target, "shrink_weight")].iloc[0])}
            for model in ("lgbm", "lgbm_cal", "linear_cal"):
                if len(realised):
                    row.update({f"{model}.{k}": v for k, v in _fold_scores(realised, target, model).items()})
            rows.append(row)
    return pd.DataFrame(rows)


def _fold_scores(frame: pd.DataFrame, target: str, model: str) -> dict[str, float]:
    """R2_OS, hit rate (P > 0.5) and Brier score of one model on a fold's rows, computed as in
    :func:`model_report` but without its significance tests (a fold is too short for them, and there are many)."""
    nan = float("nan")
    y, f, m = frame[col(target, "y")], frame[col(target, model, "f")], frame[col(target, "hist_mean", "f")]
    up, p, ref = frame[col(target, "up")], frame[col(target, model, "p")], frame[col(target, "hist_mean", "p")]
    reg = (y.notna() & f.notna() & m.notna()).to_numpy()
    clf = (up.notna() & p.notna() & ref.notna()).to_numpy()
    return {"r2_oos": M.r2_oos(y[reg], f[reg], m[reg]) if reg.any() else nan,
            "hit_rate": M.hit_rate(up[clf].astype("float64"), p[clf], 0.5) if clf.any() else nan,
            "brier": M.brier(up[clf].astype("float64"), p[clf]) if clf.any() else nan}
