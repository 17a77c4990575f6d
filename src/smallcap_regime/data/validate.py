"""Checks every dataset passes before it may replace a cached vintage (after parsing, before any write).

The parsers check a file on its own (layout, numbers, units); these checks need context the parsers lack: today's
date, the cached vintage and the configured leg columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import pandas as pd

from ..errors import DataFormatError, OlderVintageError
from .cache import CacheEntry

# Period labels run slightly ahead of the calendar in some files (a week dated by its Friday); beyond this,
# a date after today is a corrupt row, not data.
FUTURE_TOLERANCE = timedelta(days=7)


def check_not_future(dates: pd.DatetimeIndex | pd.Series, where: str, today: date) -> None:
    """Refuse data dated after ``today`` plus :data:`FUTURE_TOLERANCE`.

    Raises
    ------
    DataFormatError
        Naming the first future date and how many rows are affected.
    """
    dates = pd.DatetimeIndex(dates)
    limit = pd.Timestamp(today + FUTURE_TOLERANCE)
    future = dates[dates > limit]
    if len(future):
        raise DataFormatError(where, f"{len(future)} row(s) dated in the future, first {future.min():%Y-%m-%d} "
                                     f"(today is {today.isoformat()})")


def trim_trailing_missing(frame: pd.DataFrame, columns: Sequence[str]) -> tuple[pd.DataFrame, str | None]:
    """Drop the trailing rows where all of ``columns`` are missing; returns the frame and a note (None if none).

    A file whose last years are missing codes (-99.99) would otherwise look current while the usable data ends
    earlier; the cache records the last usable date instead.
    """
    usable = frame[list(columns)].notna().any(axis=1).to_numpy()
    if usable.all() or not usable.any():
        return frame, None
    last = int(usable.nonzero()[0][-1])
    dropped = frame.index[last + 1:]
    if not len(dropped):
        return frame, None
    note = (f"trimmed {len(dropped)} trailing row(s) without data ({dropped[0]:%Y-%m-%d}..{dropped[-1]:%Y-%m-%d}); "
            f"last usable {frame.index[last]:%Y-%m-%d}")
    return frame.iloc[: last + 1], note


def check_legs(frame: pd.DataFrame, legs: Sequence[str], where: str) -> None:
    """The configured small and large leg columns must be in a portfolios file.

    Raises
    ------
    DataFormatError
        Naming the missing columns, the setting that chose them and the columns the file has.
    """
    missing = [leg for leg in legs if leg not in frame.columns]
    if missing:
        raise DataFormatError(
            where,
            f"no column(s) {', '.join(map(repr, missing))} for the small/large legs ([french] small_column / "
            f"large_column in the series catalogue); the file has {', '.join(frame.columns)}",
        )


def check_not_older(key: str, last: str | None, cached: CacheEntry | None, allow_older: bool) -> None:
    """Refuse a vintage that ends before the cached one (a stale mirror), unless ``allow_older``.

    Raises
    ------
    OlderVintageError
        Naming both end dates and the option that accepts the older vintage.
    """
    if allow_older or cached is None or cached.last is None:
        return
    if last is None or last < cached.last:
        raise OlderVintageError(
            f"{key}: the download ends {last or 'with no data'}, before the cached vintage ({cached.last}); "
            "kept the cached one (`regime data pull --allow-older` accepts an older vintage)"
        )
