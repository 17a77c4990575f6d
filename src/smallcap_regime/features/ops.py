"""Generic month-indexed series operations used by features and targets (backward-looking only)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import DataFormatError


def check_monthly_index(panel: pd.DataFrame, who: str) -> None:
    """Raise DataFormatError unless the panel index is strictly consecutive month ends.

    Every ``shift(k)`` in the features and targets means "k months", which only holds on such an index.
    """
    index = panel.index
    if not isinstance(index, pd.DatetimeIndex):
        raise DataFormatError("monthly panel", f"{who} needs a DatetimeIndex of month ends, got {type(index).__name__}")
    if len(index) == 0:
        return
    if not index.is_month_end.all() or (index != index.normalize()).any():
        bad = index[~index.is_month_end | (index != index.normalize())][0]
        raise DataFormatError("monthly panel", f"{who} needs month-end dates at midnight; found {bad}")
    steps = np.diff(index.to_period("M").asi8)
    if (steps != 1).any():
        at = int(np.flatnonzero(steps != 1)[0])
        raise DataFormatError(
            "monthly panel",
            f"{who} needs consecutive months (sorted, no gaps or duplicates); {index[at].date()} is followed by "
            f"{index[at + 1].date()}",
        )


def change(series: pd.Series, months: int) -> pd.Series:
    """Difference over ``months``: ``x[t] - x[t-months]`` (same unit as x)."""
    return series - series.shift(months)


def pct_change(series: pd.Series, months: int) -> pd.Series:
    """Percent change over ``months``: ``100 * (x[t] / x[t-months] - 1)``; NaN stays NaN (no forward fill)."""
    return 100.0 * (series / series.shift(months) - 1.0)


def compound(returns: pd.Series, months: int) -> pd.Series:
    """Compounded return over the last ``months`` months ending at t, decimal: ``prod(1 + r[t-k]) - 1``.

    An exact product of shifted gross returns, so any missing month in the window gives NaN.
    """
    gross = 1.0 + returns
    total = gross
    for lag in range(1, months):
        total = total * gross.shift(lag)
    return total - 1.0
