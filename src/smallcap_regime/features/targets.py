"""Forecast targets at each month-end origin t: returns compounded over the next h months t+1..t+h.

These are the only forward-looking quantities in the project; they are never features. Definitions follow the
evaluation notes: ``relative_hm = prod(1 + small) - prod(1 + large)``, ``absolute_hm = prod(1 + small) - 1``.
"""

from __future__ import annotations

import pandas as pd

from ..errors import DataFormatError
from ..names import target_column, tbill_column
from .ops import check_monthly_index, compound

REQUIRED = ("small_ret", "large_ret", "rf")


def forward_compound(returns: pd.Series, horizon: int) -> pd.Series:
    """Return compounded over months t+1..t+horizon, decimal, aligned at origin t (NaN for the last rows)."""
    return compound(returns, horizon).shift(-horizon)


def build_targets(panel: pd.DataFrame, horizon: int = 3) -> pd.DataFrame:
    """Relative and absolute targets, their up/down labels and the T-bill return over the same window.

    Parameters
    ----------
    panel : DataFrame
        Monthly panel on consecutive month ends with ``small_ret``, ``large_ret`` and ``rf`` (decimal returns).
    horizon : int
        h, months ahead (>= 1).

    Returns
    -------
    DataFrame
        On the panel index, float64: ``relative_{h}m``, ``absolute_{h}m`` (decimal), ``relative_{h}m_up``,
        ``absolute_{h}m_up`` (1.0 if the target is > 0, 0.0 if <= 0, NaN if unknown) and ``tbill_{h}m``
        (compounded rf, decimal). The last h rows are NaN: those are the origins being forecast.

    Raises
    ------
    ValueError
        ``horizon`` is not an integer >= 1.
    DataFormatError
        A required column is missing or the index is not consecutive month ends.
    """
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
        raise ValueError(f"build_targets: horizon must be an integer >= 1 (months), got {horizon!r}")
    missing = [c for c in REQUIRED if c not in panel.columns]
    if missing:
        raise DataFormatError(
            "monthly panel",
            f"build_targets needs column(s) {', '.join(REQUIRED)}; missing: {', '.join(missing)}",
        )
    check_monthly_index(panel, "build_targets")
    small, large, rf = (forward_compound(panel[c].astype("float64"), horizon) for c in REQUIRED)
    relative, absolute = small - large, small
    frame = pd.DataFrame(
        {
            target_column("relative", horizon): relative,
            target_column("absolute", horizon): absolute,
            target_column("relative", horizon, label=True): (relative > 0).astype("float64").where(relative.notna()),
            target_column("absolute", horizon, label=True): (absolute > 0).astype("float64").where(absolute.notna()),
            tbill_column(horizon): rf,
        },
        index=panel.index,
    )
    return frame.astype("float64")
