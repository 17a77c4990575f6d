"""What is in the cache, how fresh it is, and what the offline sample holds."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from .cache import Cache
from .catalog import fred_specs, parse_duration

PERIOD_DAYS = {"daily": 1, "weekly": 7, "monthly": 31, "quarterly": 92}
# French files are refreshed about monthly, a month or two after the data; FINRA twice a month.
STALE_DAYS = {"french": 95, "finra": 45}
COLUMNS = ["source", "series", "first", "last", "rows", "fetched_at", "stale"]


def stale_after_days(key: str) -> int:
    """Days after its last observation when a cached series should have been refreshed."""
    source, name = key.split("/", 1)
    if source != "fred":
        return STALE_DAYS.get(source, 45)
    spec = next((s for s in fred_specs() if s.series_id == name), None)
    if spec is None:
        return 45
    lag = parse_duration(spec.lag)
    lag_days = lag.days if isinstance(lag, pd.Timedelta) else 31 * lag.months
    return PERIOD_DAYS[spec.freq] + lag_days + 14


def cache_status(home: Path, today: date | None = None) -> pd.DataFrame:
    """One row per cached dataset (empty frame when nothing was pulled)."""
    today = today or date.today()
    rows = []
    for key, entry in sorted(Cache(home).manifest().items()):
        last = date.fromisoformat(entry.last) if entry.last else None
        stale = last is None or (today - last).days > stale_after_days(key)
        rows.append([entry.source, key.split("/", 1)[1], entry.first, entry.last, entry.rows, entry.fetched_at,
                     stale])
    return pd.DataFrame(rows, columns=COLUMNS)


def sample_status() -> pd.DataFrame:
    """The offline sample's tables, in the same layout as :func:`cache_status`."""
    from .sample import load_sample_frames

    frames, vintages = load_sample_frames()
    rows = []
    for frame, (key, vintage) in zip(frames.values(), vintages.items()):
        rows.append(["sample (offline)", f"{key.split('/', 1)[1]} [{vintage['file']}]",
                     frame.index.min().date().isoformat(), frame.index.max().date().isoformat(), len(frame),
                     f"package {vintage['package_version']}", True])
    return pd.DataFrame(rows, columns=COLUMNS)
