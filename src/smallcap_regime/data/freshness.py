"""How fresh the inputs of a forecast are: the data's last month against today, and each series against its
maximum age in the lag table (``series.toml``).

A series past its ``max_age`` at the forecast origin is NaN in the panel there (see :mod:`.panel`): the features it
feeds are missing values, which LightGBM handles, but the forecast leans on less information than usual, so it is
named in a warning. Nothing here reads the cached files: the manifest's last observation dates are enough.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd

from .cache import Cache
from .catalog import fred_specs, load_catalog, parse_duration
from .panel import FREQ_PERIOD_END, Panel
from .sources import FINRA_KEY

#: A month's French returns appear about a month after it ends: data older than this (days) are behind.
DATA_BEHIND_DAYS = 62


@dataclass(frozen=True)
class StaleSeries:
    """An input series too old to enter the panel at the forecast origin.

    Attributes
    ----------
    key : cache key (``fred/VIXCLS``).
    column : panel column it feeds (``vix``).
    last : its last observation.
    available : when that observation was published (period end + lag).
    max_age : the lag table's maximum age (``"10d"``).
    """

    key: str
    column: str
    last: pd.Timestamp
    available: pd.Timestamp
    max_age: str

    def warning(self, panel: Panel, as_of: pd.Timestamp) -> str:
        """What the staleness means for the forecast at ``as_of``: a missing input, or one a fallback series fills."""
        filled = self.column in panel.frame.columns and pd.notna(panel.frame.at[as_of, self.column])
        effect = f"{self.column} comes from its fallback series" if filled else "treated as missing"
        return f"stale input, {effect}: {self.describe(as_of)}; refresh with `regime data pull`"

    def describe(self, as_of: pd.Timestamp) -> str:
        return (f"{self.key} ({self.column}): last value {self.last.date()}, "
                f"{(as_of - self.available).days} days old at {as_of.date()} (max age {self.max_age})")


def data_behind(last_month_end: pd.Timestamp, today: date) -> str | None:
    """A warning when the data's latest complete month is older than the publication delay explains, else None."""
    days = (pd.Timestamp(today) - last_month_end).days
    if days <= DATA_BEHIND_DAYS:
        return None
    return (f"the data end {last_month_end.date()}, {days} days before today ({today}): this forecast is for "
            "months that may already have passed; run `regime data pull` for fresh data")


def stale_series(home: Path, as_of: pd.Timestamp) -> list[StaleSeries]:
    """Every cached live series whose last value is past its ``max_age`` at month end ``as_of``.

    Series never pulled are not listed (they are absent, not stale); series without a ``max_age`` never go stale.
    """
    manifest = Cache(home).manifest()
    candidates = [(f"fred/{s.series_id}", s.name, s.freq, s.lag, s.max_age) for s in fred_specs()]
    finra = load_catalog()["finra"]
    candidates.append((FINRA_KEY, "short interest", "daily", finra["lag"], finra.get("max_age")))
    out = []
    for key, column, freq, lag, max_age in candidates:
        entry = manifest.get(key)
        if entry is None or not entry.last or max_age is None:
            continue
        last = pd.Timestamp(entry.last)
        available = FREQ_PERIOD_END[freq](pd.DatetimeIndex([last]))[0] + parse_duration(lag, key)
        if available + parse_duration(max_age, key) < as_of:
            out.append(StaleSeries(key, column, last, available, max_age))
    return out


def stale_inputs(home: Path, panel: Panel, as_of: pd.Timestamp) -> list[StaleSeries]:
    """:func:`stale_series` for a panel built from the live cache; nothing for the offline sample."""
    return stale_series(home, as_of) if panel.source == "live" else []
