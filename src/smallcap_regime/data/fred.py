"""Parser for single FRED series as downloaded from `fredgraph.csv` (or third-party dumps of the same shape).

Three layouts are in circulation (`docs/formats.md`, section 5): `observation_date,<ID>` with empty
fields for missing values (current fredgraph), `DATE,<ID>` with `.` for missing values (older fredgraph), and
`date,<ID>` with missing rows simply absent (API dumps). Dates are ISO `YYYY-MM-DD`.
"""

from __future__ import annotations

import csv
import io
import math
import re

import numpy as np
import pandas as pd

from smallcap_regime.errors import DataFormatError

DATE_COLUMNS = ("observation_date", "DATE", "date")
MISSING_MARKERS = ("", ".")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_fred_csv(
    raw: bytes, series_id: str, where: str, *, valid_range: tuple[float, float] | None = None,
    typical: tuple[float, float] | None = None,
) -> pd.Series:
    """Parse one FRED series from CSV bytes.

    Parameters
    ----------
    raw
        Body of the CSV download.
    series_id
        FRED id, e.g. "DGS10"; the value column must carry exactly this name (case-sensitive).
    where
        File name or URL, used in error messages.
    valid_range
        Inclusive (low, high) bounds in the series' native units (e.g. (-5, 30) for a yield in percent);
        any valid observation outside them is an error, since it usually means wrong units or wrong series.
    typical
        Inclusive (low, high) bounds for the series' median: catches a unit slip that stays inside
        `valid_range`, such as yields in decimals (0.0064 for 0.64 %).

    Returns
    -------
    pandas.Series
        Shape (valid observations,): float64 values in the series' native units (percent, index level, ...),
        missing observations dropped. Index is a DatetimeIndex named `date` (FRED's period start date, e.g.
        the 1st of the month for monthly series), strictly increasing; `name` is `series_id`.

    Raises
    ------
    DataFormatError
        If the body is HTML or empty, the header lacks the date or `series_id` column, a date or value is
        malformed, dates repeat, no valid observation remains, a value falls outside `valid_range`, the median
        falls outside `typical`, or the CSV reader fails (e.g. a field over the csv module's size limit).
    """
    if raw.lstrip()[:1] == b"<":
        raise DataFormatError(where, "not a CSV: looks like an HTML page")
    if not raw.strip():
        raise DataFormatError(where, "empty response body")
    try:
        dates, values, linenos = _read_rows(raw.decode("utf-8-sig", errors="replace"), series_id, where)
    except csv.Error as exc:
        raise DataFormatError(where, f"not a readable CSV ({exc})") from None
    if not dates:
        raise DataFormatError(where, "no observations (header only)")

    index = _parse_dates(dates, linenos, where)
    series = pd.Series(values, index=index, name=series_id, dtype="float64")
    _check_unique(series.index, linenos, where)
    series = series.sort_index().dropna()
    if series.empty:
        raise DataFormatError(where, f"no valid observation: all {len(dates)} values are missing")
    if valid_range is not None:
        _check_range(series, valid_range, where)
    if typical is not None:
        _check_typical(series, typical, where)
    return series


def _read_rows(text: str, series_id: str, where: str) -> tuple[list[str], list[float], list[int]]:
    """Raw date texts, values (NaN where missing) and line numbers of the data rows, in file order."""
    reader = csv.reader(io.StringIO(text))
    header = [cell.strip() for cell in next(filter(None, reader))]  # first non-blank line
    value_col = _value_column(header, series_id, where)
    dates: list[str] = []
    values: list[float] = []
    linenos: list[int] = []
    for cells in reader:
        if not cells:
            continue  # blank line, e.g. a trailing one
        if len(cells) != len(header):
            problem = f"{len(cells)} fields but the header has {len(header)}"
            raise DataFormatError(where, f"line {reader.line_num}: {problem}")
        dates.append(cells[0].strip())
        values.append(_parse_value(cells[value_col], reader.line_num, where))
        linenos.append(reader.line_num)
    return dates, values, linenos


def _value_column(header: list[str], series_id: str, where: str) -> int:
    """Position of the `series_id` column, after checking that the first column holds the dates."""
    if header[0] not in DATE_COLUMNS:
        raise DataFormatError(
            where,
            f"unexpected header {','.join(header)!r}: the first column should be one of {', '.join(DATE_COLUMNS)}",
        )
    if series_id not in header[1:]:
        raise DataFormatError(where, f"no column {series_id!r} (columns found: {', '.join(header)})")
    return header.index(series_id, 1)


def _parse_value(cell: str, lineno: int, where: str) -> float:
    """A finite float, or NaN for a missing marker."""
    text = cell.strip()
    if text in MISSING_MARKERS:
        return math.nan
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise DataFormatError(
            where, f"line {lineno}: value {text!r} is not a number (missing values must be empty or '.')"
        )
    return value


def _parse_dates(texts: list[str], linenos: list[int], where: str) -> pd.DatetimeIndex:
    """Parse ISO dates, naming the first line whose date is malformed or impossible (e.g. 2020-02-30)."""
    parsed = pd.to_datetime(pd.Series(texts, dtype="str"), format="%Y-%m-%d", errors="coerce")
    bad = parsed.isna().to_numpy() | ~np.array([bool(_ISO_DATE.fullmatch(t)) for t in texts])
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataFormatError(where, f"line {linenos[i]}: bad date {texts[i]!r} (expected YYYY-MM-DD)")
    return pd.DatetimeIndex(parsed, name="date")


def _check_unique(index: pd.DatetimeIndex, linenos: list[int], where: str) -> None:
    """Every row, missing or not, must have its own date."""
    repeated = index.duplicated()
    if repeated.any():
        i = int(np.flatnonzero(repeated)[0])
        first = linenos[int(np.flatnonzero(index == index[i])[0])]
        shown = ", ".join(dict.fromkeys(index[repeated].strftime("%Y-%m-%d")))
        raise DataFormatError(where, f"duplicated dates: {shown} (first at lines {first} and {linenos[i]})")


def _check_range(series: pd.Series, valid_range: tuple[float, float], where: str) -> None:
    """Name the first observation (by date) outside `valid_range`."""
    low, high = valid_range
    outside = series[(series < low) | (series > high)]
    if len(outside):
        raise DataFormatError(
            where,
            f"{len(outside)} value(s) outside the expected range; first {outside.index[0]:%Y-%m-%d} = "
            f"{outside.iloc[0]:g}, expected values between {low:g} and {high:g}; wrong units?",
        )


def _check_typical(series: pd.Series, typical: tuple[float, float], where: str) -> None:
    """The median must sit in the series' typical range; a factor of 100 off either way lands outside it."""
    low, high = typical
    median = float(series.median())
    if not low <= median <= high:
        hint = "decimals instead of percent?" if median < low else "a larger unit than expected?"
        raise DataFormatError(
            where, f"median {median:g} is outside the typical level {low:g} to {high:g}; wrong units ({hint})"
        )
