"""The tuning objective: mean loss over an inner purged walk-forward that ends before the out-of-sample start."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.trial import FrozenTrial, Trial, TrialState
from sklearn.metrics import log_loss

from ..dataset import Dataset
from ..errors import RegimeError
from ..evaluation.walkforward import Fold, PurgedWalkForward
from ..models.estimator import TargetEstimator
from .space import PARAMS, TuningSettings


@dataclass(frozen=True)
class InnerData:
    """Pre-out-of-sample data of a tuning objective.

    Attributes
    ----------
    features : feature matrix on the usable origins (targets realised before ``oos_start``), consecutive months.
    y : the objective's target (return or 0/1 label) on the same origins.
    folds : purged walk-forward folds over those origins (positions), ``inner_folds`` equal test blocks at the end.
    estimator : the tuned target's estimator as the experiment declares it (its ``[options]``); each trial fits
        a copy with the trial's parameters, through the same ``fit`` as the backtest and the final model.
    """

    features: pd.DataFrame
    y: pd.Series
    folds: list[Fold]
    estimator: TargetEstimator


def inner_data(data: Dataset, settings: TuningSettings) -> InnerData:
    """The inner walk-forward over origins whose targets were realised before the out-of-sample start.

    Parameters
    ----------
    data : the experiment's dataset built from panel rows strictly before ``oos_start``
        (``build_dataset(exp, ..., before=exp.validation.oos_start)``).
    settings : :func:`search_space` output.

    Raises
    ------
    RegimeError
        The dataset reaches ``oos_start``, or too few pre-out-of-sample origins for ``min_train_months`` plus
        ``inner_folds`` test blocks.
    """
    exp = data.experiment
    val, h = exp.validation, exp.horizon
    if len(data.features) and data.features.index[-1] >= val.oos_start:
        raise RegimeError(f"tuning data must end before oos_start {val.oos_start:%Y-%m}; build it with "
                          "before=oos_start")
    y = data.target(settings.target, label=settings.model == "classifier")
    # purge at the outer boundary too: the same origins the first out-of-sample fold trains on
    usable = len(data.features) - h - val.embargo_months + 1
    gap, k = h + val.embargo_months, settings.inner_folds
    block = (usable - val.min_train_months - gap + 1) // k
    if block < 1:
        raise RegimeError(
            f"{exp.path}: {max(usable, 0)} origins before oos_start {val.oos_start:%Y-%m} are too few for "
            f"min_train_months={val.min_train_months} plus {k} inner folds; lower [tuning] inner_folds or "
            "[validation] min_train_months, or move oos_start later"
        )
    index = data.features.index[:usable]
    first_test = index[usable - k * block]
    splitter = PurgedWalkForward(horizon=h, first_test=first_test, refit_every=block,
                                 min_train=val.min_train_months, embargo=val.embargo_months, start=first_test)
    return InnerData(data.features.iloc[:usable], y.iloc[:usable], splitter.folds(index),
                     exp.estimator(settings.target))


def _fold_score(data: InnerData, fold: Fold, params: dict[str, Any], model: str,
                binned: dict[tuple, Any] | None = None) -> float:
    """The loss of one fit on ``fold``; ``binned``: the fold's LightGBM Datasets kept from earlier trials (a
    trial whose binning parameters an earlier one had reuses its binning: same bins, same trees)."""
    x_train, y_train = data.features.iloc[fold.train], data.y.iloc[fold.train]
    keep = y_train.notna().to_numpy()
    x_test, y_test = data.features.iloc[fold.test], data.y.iloc[fold.test]
    realised = y_test.notna().to_numpy()
    x_test, y_test = x_test[realised], y_test[realised].to_numpy()
    template = data.estimator
    estimator = TargetEstimator(params, params, template.options, template.families)
    y = y_train[keep].to_numpy()
    if model == "regressor":
        pred = estimator.fit(x_train[keep], y, binned=binned).predict(x_test)
        return float(np.mean((y_test - pred) ** 2))
    proba = estimator.fit(x_train[keep], None, y, binned=binned).predict_proba(x_test)[:, 1]
    return float(log_loss(y_test.astype(int), proba, labels=[0, 1]))


def _suggest(trial: Trial, space: dict[str, tuple[float, float]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, (low, high) in space.items():
        param = PARAMS[name]
        if param.kind is int:
            out[name] = trial.suggest_int(name, int(low), int(high))
        else:
            out[name] = trial.suggest_float(name, low, high, log=param.log)
    return out


class FoldMedianPruner(optuna.pruners.BasePruner):
    """Median pruning over walk-forward folds (intermediate value at step k = loss of fold k; minimised).

    A trial is pruned after fold k (k >= ``n_warmup_steps``) when its mean loss over folds 0..k is above the median
    of the completed trials' mean loss over the same folds, once ``n_startup_trials`` trials have completed.
    Optuna's ``MedianPruner`` compares a trial's *best* value over steps with the others' values at the current
    step, which suits learning curves but not folds: fold losses differ by period, so the best fold is usually just
    the easiest one and a trial that is bad on the later folds would never be pruned.
    """

    def __init__(self, n_startup_trials: int = 3, n_warmup_steps: int = 1) -> None:
        self.n_startup_trials = n_startup_trials
        self.n_warmup_steps = n_warmup_steps

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is None or step < self.n_warmup_steps:
            return False

        def mean_to_step(t: FrozenTrial) -> float | None:
            values = [t.intermediate_values.get(s) for s in range(step + 1)]
            known = [v for v in values if v is not None]
            return float(np.mean(known)) if len(known) == len(values) else None

        done = [m for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if (m := mean_to_step(t)) is not None]
        current = mean_to_step(trial)
        if len(done) < self.n_startup_trials or current is None:
            return False
        return current > float(np.median(done))


def make_objective(data: InnerData, settings: TuningSettings, fixed: dict[str, Any]) -> Callable[[Trial], float]:
    binned: list[dict[tuple, Any]] = [{} for _ in data.folds]  # per fold, for the whole study

    def objective(trial: Trial) -> float:
        params = {**fixed, **_suggest(trial, settings.space)}
        scores = []
        for step, fold in enumerate(data.folds):
            scores.append(_fold_score(data, fold, params, settings.model, binned[step]))
            trial.report(scores[-1], step)
            # after the last fold the score is complete: pruning then would save nothing and discard it
            if step < len(data.folds) - 1 and trial.should_prune():
                raise optuna.TrialPruned()
        return float(np.mean(scores))

    return objective
