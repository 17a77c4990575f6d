"""The month-end, point-in-time panel that every later stage reads.

A row dated t (a month end) holds only what had been published by t. Each raw series arrives as observations
stamped the way its source stamps them (FRED monthly series on the 1st of the month, weekly NFCI on Fridays, ...).
An observation becomes *available* at ``period_end + lag`` (lags come from ``series.toml``, the one lag table), and
the panel takes, at each month end, the latest observation available by then, provided it is not older than the
series' ``max_age``. Daily returns are compounded within the month, and their squares summed (realised variance).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .catalog import parse_duration

FREQ_PERIOD_END = {
    "daily": lambda idx: idx,
    "weekly": lambda idx: idx,  # weekly FRED series are stamped on the last day of their week
    "monthly": lambda idx: idx + pd.offsets.MonthEnd(0),
    "quarterly": lambda idx: idx + pd.offsets.QuarterEnd(0),
}


@dataclass(frozen=True)
class RawSeries:
    """Observations of one series before point-in-time alignment.

    Parameters
    ----------
    name : panel column it feeds (``yield_10y``).
    values : float Series on a DatetimeIndex of observation stamps, missing values already dropped.
    freq : ``daily``, ``weekly``, ``monthly`` or ``quarterly`` (how the stamp maps to the period's end).
    lag : publication delay after the period end (``"1d"``, ``"1m"``).
    max_age : oldest a value may be (counted from when it became available) before the panel shows NaN.
    priority : among series feeding the same name, 1 wins; others only fill its gaps.
    origin : where it came from, e.g. ``fred/DGS10``.
    """

    name: str
    values: pd.Series
    freq: str
    lag: str
    max_age: str | None = None
    priority: int = 1
    origin: str = ""


@dataclass
class Panel:
    """The monthly panel plus what it was built from."""

    frame: pd.DataFrame
    source: str
    vintages: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def first(self) -> pd.Timestamp:
        return self.frame.index[0]

    @property
    def last(self) -> pd.Timestamp:
        return self.frame.index[-1]

    def fingerprint(self) -> str:
        """sha256 of the panel's values, index and columns: equal fingerprints mean identical inputs."""
        hashed = pd.util.hash_pandas_object(self.frame, index=True).to_numpy()
        digest = hashlib.sha256(hashed.tobytes())
        digest.update("|".join(self.frame.columns).encode())
        return digest.hexdigest()


def available_at(raw: RawSeries) -> pd.DatetimeIndex:
    """When each observation of ``raw`` was first published."""
    period_end = FREQ_PERIOD_END[raw.freq](pd.DatetimeIndex(raw.values.index))
    return period_end + parse_duration(raw.lag, raw.origin or raw.name)


def align_point_in_time(raw: RawSeries, month_ends: pd.DatetimeIndex) -> pd.Series:
    """Value of ``raw`` known at each month end (NaN when nothing available or too old)."""
    values = raw.values.dropna().sort_index()
    if values.empty:
        return pd.Series(np.nan, index=month_ends, name=raw.name)
    avail = available_at(RawSeries(raw.name, values, raw.freq, raw.lag, origin=raw.origin))
    # availability is monotone in the stamp for a fixed lag, so a sorted search finds the latest known value
    pos = np.searchsorted(avail.values, month_ends.values, side="right") - 1
    out = np.where(pos >= 0, values.to_numpy()[np.clip(pos, 0, None)], np.nan)
    if raw.max_age is not None:
        age_limit = parse_duration(raw.max_age, raw.origin or raw.name)
        known_since = pd.DatetimeIndex(np.where(pos >= 0, avail.values[np.clip(pos, 0, None)], np.datetime64("NaT")))
        too_old = (known_since + age_limit) < month_ends
        out = np.where(too_old, np.nan, out)
    return pd.Series(out.astype("float64"), index=month_ends, name=raw.name)


def monthly_from_daily(daily_returns: pd.Series, prefix: str) -> pd.DataFrame:
    """Monthly realised variance of daily decimal returns.

    Returns
    -------
    DataFrame indexed by month end with ``<prefix>_rvar`` (sum of squared daily returns, decimal^2) and
    ``n_days`` (trading days with a return).
    """
    r = daily_returns.dropna()
    month = r.index + pd.offsets.MonthEnd(0)
    return pd.DataFrame(
        {
            f"{prefix}_rvar": (r * r).groupby(month).sum(),
            "n_days": r.groupby(month).size().astype("float64"),
        }
    ).rename_axis("date")


def month_end_grid(returns: pd.DataFrame) -> pd.DatetimeIndex:
    """Month ends from the first to the last month where both legs have a return."""
    both = returns[["small_ret", "large_ret"]].dropna()
    if both.empty:
        raise ValueError("no month has both small_ret and large_ret")
    return pd.date_range(both.index[0], both.index[-1], freq="ME", name="date")


def assemble_panel(returns: pd.DataFrame, raws: list[RawSeries]) -> pd.DataFrame:
    """Join month-end market data (lag 0) with point-in-time aligned raw series.

    Parameters
    ----------
    returns : month-end indexed frame with at least ``small_ret`` and ``large_ret`` (decimal); other columns
        (``rf``, factors, realised variances) are market data known at their own month end.
    raws : series to align; several may feed one name, merged by priority.
    """
    grid = month_end_grid(returns)
    panel = returns.reindex(grid).astype("float64")
    by_name: dict[str, list[RawSeries]] = {}
    for raw in raws:
        by_name.setdefault(raw.name, []).append(raw)
    for name, group in sorted(by_name.items()):
        merged = pd.Series(np.nan, index=grid, name=name)
        for raw in sorted(group, key=lambda r: r.priority):
            merged = merged.combine_first(align_point_in_time(raw, grid))
        panel[name] = merged
    return panel.rename_axis("date")
