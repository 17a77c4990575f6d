"""Drift of the latest features against the data a model was trained on.

Two measures a reviewer can check by hand: the share of the latest row's features outside the range they took in
training (a tree model extrapolates flat beyond it), and the population-stability index (PSI) of the recent months
against the training rows, per feature on the training deciles, averaged per family. Conventional reading of PSI:
below 0.1 stable, 0.1-0.25 moving, above 0.25 shifted (for persistent monthly series, read it against earlier
windows: see :data:`HIGH_SHARE_OUTSIDE`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

#: Months compared with the training rows by the PSI (fewer leave most bins empty: PSI measures noise).
RECENT_MONTHS = 36
#: Drift is "high" when this share of the latest features lies outside the training range: there the trees
#: extrapolate flat, whatever they learnt. The PSI is reported, not alarmed on: monthly macro series are persistent,
#: so any few recent years sit in a narrow part of a 70-year history (PSI well above 0.25 in ordinary times).
HIGH_SHARE_OUTSIDE = 0.1
#: Bins of the PSI: the training quintiles.
PSI_BINS = 5


@dataclass
class Drift:
    """Drift of the row at ``as_of`` (and the ``RECENT_MONTHS`` up to it) against training rows.

    Attributes
    ----------
    as_of : the latest month end.
    share_outside : share of the latest row's known features outside their training [min, max].
    outside : those features, with the latest value and the training range.
    psi : family -> mean PSI of its features (recent months vs training rows).
    train_first, train_last : the training rows compared against.
    """

    as_of: pd.Timestamp
    share_outside: float
    outside: pd.DataFrame
    psi: pd.Series
    psi_mean: float
    train_first: pd.Timestamp
    train_last: pd.Timestamp
    notes: list[str] = field(default_factory=list)

    @property
    def high(self) -> bool:
        return bool(self.share_outside >= HIGH_SHARE_OUTSIDE)

    def warning(self) -> str | None:
        """One line for `regime predict` when drift is high, else None."""
        if not self.high:
            return None
        return (f"the features have drifted from the training data ({self.train_first.date()}.."
                f"{self.train_last.date()}): {self.share_outside * 100:.0f} % of them are outside their training "
                f"range at {self.as_of.date()}, mean PSI {self.psi_mean:.2f} over the last {RECENT_MONTHS} months; "
                "the model extrapolates there (`regime monitor` has the detail)")


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population-stability index of ``actual`` against ``expected`` on the quintiles of ``expected``.

    Bin shares are smoothed by half a count per bin (an empty bin gives a large but finite term). NaN when either
    side has no values. Bins with equal edges (flags, categories) merge.
    """
    e, a = expected[~np.isnan(expected)], actual[~np.isnan(actual)]
    if len(e) == 0 or len(a) == 0:
        return float("nan")
    edges = np.unique(np.quantile(e, np.linspace(0, 1, PSI_BINS + 1))[1:-1])
    bins = len(edges) + 1
    e_count = np.bincount(np.searchsorted(edges, e, side="right"), minlength=bins)
    a_count = np.bincount(np.searchsorted(edges, a, side="right"), minlength=bins)
    e_share, a_share = (e_count + 0.5) / (len(e) + 0.5 * bins), (a_count + 0.5) / (len(a) + 0.5 * bins)
    return float(np.sum((a_share - e_share) * np.log(a_share / e_share)))


def feature_drift(features: pd.DataFrame, train: pd.DataFrame, family: dict[str, str],
                  as_of: pd.Timestamp | None = None) -> Drift:
    """Drift of ``features`` at ``as_of`` (default: the last row) against the ``train`` rows.

    Parameters
    ----------
    features : month-end features (rows up to ``as_of`` are used).
    train : the rows the model was fitted on (same columns).
    family : feature -> family.
    """
    as_of = features.index[-1] if as_of is None else as_of
    latest = features.loc[as_of]
    lo, hi = train.min(), train.max()
    known = latest.notna() & lo.notna()
    out = known & ((latest < lo) | (latest > hi))
    outside = pd.DataFrame({"value": latest[out], "train_min": lo[out], "train_max": hi[out]})
    recent = features.loc[:as_of].tail(RECENT_MONTHS)
    per_feature = pd.Series({c: psi(train[c].to_numpy(dtype="float64"), recent[c].to_numpy(dtype="float64"))
                             for c in features.columns})
    families = pd.Series(family).reindex(per_feature.index)
    by_family = per_feature.groupby(families, sort=False).mean().dropna()
    return Drift(as_of, float(out.sum() / known.sum()) if known.any() else 0.0, outside, by_family,
                 float(per_feature.mean()), train.index[0], train.index[-1])


def drift_warnings(features: pd.DataFrame, target: pd.Series, family: dict[str, str],
                   when: pd.Timestamp) -> list[str]:
    """`regime predict`'s drift warning for the row at ``when``: against the rows whose ``target`` is realised by
    then (those a model trained on these data was fitted on); empty when drift is not high."""
    trained = target.loc[:when].dropna().index
    if len(trained) == 0:
        return []
    warning = feature_drift(features.loc[:when], features.loc[trained], family).warning()
    return [warning] if warning else []
