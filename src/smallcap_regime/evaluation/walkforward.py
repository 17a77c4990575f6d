"""Expanding-window walk-forward folds with purge and embargo.

A test block of origins [T0, T1] is forecast by one model fitted on origins t <= T0 - h - embargo: their targets
(months t+1..t+h) are fully realised by T0, so no training label overlaps the test period (the purge).
Folds start ``burn_in`` earlier than the reported out-of-sample period: the predictions they make before the
out-of-sample start are never reported, they only feed the calibration and shrinkage maps of later folds, which
therefore see nothing but past out-of-sample behaviour.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import BaseCrossValidator


@dataclass(frozen=True)
class Fold:
    """One refit of the walk-forward. Positions index the origin (month-end) axis.

    Attributes
    ----------
    fold_id : 0, 1, ... in time order.
    train : positions of training origins, 0 .. test[0] - horizon - embargo (all targets realised by test[0]).
    test : positions of the origins this fit forecasts (a contiguous block).
    """

    fold_id: int
    train: np.ndarray
    test: np.ndarray


def make_folds(
    index: pd.DatetimeIndex,
    *,
    horizon: int,
    first_test: pd.Timestamp,
    refit_every: int = 12,
    min_train: int = 120,
    embargo: int = 0,
    start: pd.Timestamp | None = None,
) -> list[Fold]:
    """Walk-forward folds over month-end origins.

    Parameters
    ----------
    index : month-end origins, sorted (the feature frame's index; the last ``horizon`` rows have no target yet
        and are still forecast by the last fold).
    horizon : target length h in months.
    first_test : first origin of the reported out-of-sample period; a fold boundary always falls on it.
    refit_every : months per test block (refit frequency).
    min_train : fewest training origins a fold may have; earlier blocks are skipped.
    embargo : extra origins dropped between the purged training window and the test block.
    start : first origin that may be forecast at all (burn-in start); default: as early as ``min_train`` allows.

    Returns
    -------
    list of Fold, in time order, covering origins from the burn-in start to the end of ``index``.
    """
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    if refit_every < 1:
        raise ValueError(f"refit_every must be >= 1, got {refit_every}")
    if embargo < 0:
        raise ValueError(f"embargo must be >= 0, got {embargo}")
    if not index.is_monotonic_increasing or index.has_duplicates:
        raise ValueError("index must be strictly increasing month ends")
    n = len(index)
    t0 = int(index.searchsorted(pd.Timestamp(first_test)))
    if t0 >= n:
        raise ValueError(f"first_test {pd.Timestamp(first_test).date()} is after the last origin {index[-1].date()}")
    # a block starting at position a trains on origins 0 .. a - gap: the target of origin a - horizon ends at a
    gap = horizon + embargo
    earliest = min_train + gap - 1
    if start is not None:
        earliest = max(earliest, int(index.searchsorted(pd.Timestamp(start))))
    if t0 < min_train + gap - 1:
        raise ValueError(f"first_test {index[t0].date()} leaves {max(t0 - gap + 1, 0)} training origins, "
                         f"fewer than min_train={min_train}")
    if earliest > t0:  # the blocks are laid out backwards from first_test, so none could start on it
        raise ValueError(f"start {pd.Timestamp(start).date()} is after first_test {index[t0].date()}")
    # block starts: backwards from first_test down to the burn-in start, then forwards to the end
    starts = list(range(t0, earliest - 1, -refit_every))[::-1] + list(range(t0 + refit_every, n, refit_every))
    if starts[0] > earliest:
        starts.insert(0, max(earliest, starts[0] - refit_every))
    folds = []
    for fold_id, (a, b) in enumerate(zip(starts, starts[1:] + [n])):
        folds.append(Fold(fold_id, np.arange(0, a - gap + 1), np.arange(a, b)))
    return folds


class PurgedWalkForward(BaseCrossValidator):
    """Expanding, purged walk-forward splitter over month-end origins (scikit-learn cross-validator API).

    Parameters are those of :func:`make_folds`; the origins are the index of the ``X`` passed to :meth:`split`.

    Examples
    --------
    >>> cv = PurgedWalkForward(horizon=3, first_test="1990-01-31", refit_every=12, embargo=1)
    >>> for train, test in cv.split(features):  # positions, like any scikit-learn splitter
    ...     model.fit(features.iloc[train], y.iloc[train])
    >>> print(cv.plan(features.index))          # one row per fold: training span, test span, sizes
    """

    def __init__(self, horizon: int, first_test: pd.Timestamp | str, refit_every: int = 12, min_train: int = 120,
                 embargo: int = 0, start: pd.Timestamp | str | None = None) -> None:
        self.horizon = horizon
        self.first_test = first_test
        self.refit_every = refit_every
        self.min_train = min_train
        self.embargo = embargo
        self.start = start

    def folds(self, index: pd.DatetimeIndex) -> list[Fold]:
        """The folds over ``index`` (month-end origins, sorted)."""
        return make_folds(index, horizon=self.horizon, first_test=pd.Timestamp(self.first_test),
                          refit_every=self.refit_every, min_train=self.min_train, embargo=self.embargo,
                          start=None if self.start is None else pd.Timestamp(self.start))

    def split(self, X: pd.DataFrame | pd.Series, y: object = None,
              groups: object = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(train, test)`` position arrays, one pair per fold, in time order.

        Parameters
        ----------
        X : DataFrame or Series indexed by month-end origins (the feature frame).
        """
        if not isinstance(getattr(X, "index", None), pd.DatetimeIndex):
            raise TypeError("PurgedWalkForward.split needs X indexed by month-end dates (a DatetimeIndex)")
        for fold in self.folds(X.index):
            yield fold.train, fold.test

    def get_n_splits(self, X: pd.DataFrame | pd.Series | None = None, y: object = None,
                     groups: object = None) -> int:
        """Number of folds (needs ``X``: the count depends on the origins)."""
        if X is None:
            raise ValueError("PurgedWalkForward.get_n_splits needs X: the number of folds depends on its dates")
        return len(self.folds(X.index))

    def plan(self, index: pd.DatetimeIndex) -> pd.DataFrame:
        """The fold plan: per fold, first/last training origin, first/last test origin and their counts."""
        rows = [{"fold": f.fold_id, "train_from": index[f.train[0]].date(), "train_to": index[f.train[-1]].date(),
                 "n_train": len(f.train), "test_from": index[f.test[0]].date(),
                 "test_to": index[f.test[-1]].date(), "n_test": len(f.test)} for f in self.folds(index)]
        return pd.DataFrame(rows).set_index("fold")
