"""Parser for FINRA bi-monthly equity short-interest files (`shrtYYYYMMDD.csv`).

No real file was available when this was written: the layout follows the hypothesis in
`docs/formats.md`, section 6 (pipe-delimited despite `.csv`, a 14-column header with camelCase names,
`settlementDate` as `YYYY-MM-DD`). The parser therefore checks the columns it needs by name, reports the
header it found when they differ, and also accepts a comma-delimited copy with the same header.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from datetime import date
from typing import Any

import pandas as pd

from smallcap_regime.errors import DataFormatError

REQUIRED_COLUMNS = (
    "symbolCode",
    "currentShortPositionQuantity",
    "averageDailyVolumeQuantity",
    "daysToCoverQuantity",
    "settlementDate",
)
# file column -> output column
QUANTITY_COLUMNS = {
    "currentShortPositionQuantity": "short_shares",
    "averageDailyVolumeQuantity": "avg_daily_volume",
    "daysToCoverQuantity": "days_to_cover",
}
OUTPUT_COLUMNS = ("settlement_date", "symbol", *QUANTITY_COLUMNS.values())
# FINRA's own days-to-cover tops out at 999.99 for the most illiquid issues; beyond that the value is garbage.
MAX_DAYS_TO_COVER = 1000.0
_DATE_FORMATS = ("%Y-%m-%d", "%Y%m%d")
# Pipe files are read without quote handling: a stray `"` in an issue name must not swallow the delimiter.
_DIALECTS: dict[str, dict[str, Any]] = {"|": {"delimiter": "|", "quoting": csv.QUOTE_NONE}, ",": {"delimiter": ","}}


def parse_short_interest(raw: bytes, where: str, symbols: Sequence[str], expected: date | None = None) -> pd.DataFrame:
    """Parse one settlement date's short interest for the requested symbols.

    Parameters
    ----------
    raw
        Bytes of the file, pipe-delimited as FINRA serves it or comma-delimited with the same header.
    where
        File name or URL, used in error messages.
    symbols
        Symbols to keep, matched exactly against `symbolCode` (e.g. ["IWM", "SPY"]).
    expected
        The settlement date the file was requested for (its `shrtYYYYMMDD.csv` name); a file whose rows say
        another date is refused, so that a mis-dated mirror copy neither overwrites that other date's rows nor
        marks the requested date as fetched.

    Returns
    -------
    pandas.DataFrame
        Shape (requested symbols present in the file, 5), sorted by symbol, default RangeIndex. Columns:
        `settlement_date` (datetime64, the same for all rows), `symbol` (str), `short_shares` (shares sold
        short, float64), `avg_daily_volume` (shares per day, float64), `days_to_cover` (days, float64).
        Requested symbols absent from the file are simply absent.

    Raises
    ------
    DataFormatError
        If the body is HTML or empty, required columns are missing, a row has the wrong number of fields,
        `settlementDate` values are malformed or differ between rows, a requested symbol appears twice, a
        quantity of a requested symbol is not a non-negative number, days to cover exceed
        `MAX_DAYS_TO_COVER`, the settlement date is not `expected`, or the CSV reader fails (e.g. a field over the
        csv module's size limit).
    """
    if raw.lstrip()[:1] == b"<":
        raise DataFormatError(where, "not a short-interest file: looks like an HTML page")
    if not raw.strip():
        raise DataFormatError(where, "empty file")
    text = raw.decode("utf-8-sig", errors="replace")
    try:
        delimiter, header = _sniff_header(text.splitlines()[0], where)
        settlement, found = _scan_rows(text, delimiter, header, set(symbols), where)
    except csv.Error as exc:
        raise DataFormatError(where, f"not a readable CSV ({exc})") from None
    settlement_date = _parse_settlement(*settlement, where)
    if expected is not None and settlement_date.date() != expected:
        raise DataFormatError(where, f"settlementDate {settlement_date.date()} (line {settlement[1]}) is not the "
                                     f"requested settlement date {expected}; the file is refused")
    position = {name: i for i, name in enumerate(header)}
    records = [
        {
            "symbol": symbol,
            **{
                out: _quantity(cells[position[name]], name, lineno, where)
                for name, out in QUANTITY_COLUMNS.items()
            },
        }
        for symbol, (lineno, cells) in sorted(found.items())
    ]
    return _frame(records, settlement_date)


def _scan_rows(
    text: str, delimiter: str, header: list[str], wanted: set[str], where: str
) -> tuple[tuple[str, int], dict[str, tuple[int, list[str]]]]:
    """One pass over the data rows: check field counts and that all rows share one `settlementDate`.

    Returns the first row's raw `settlementDate` with its line number, and the cells and line number of each
    wanted symbol's row.
    """
    date_col, symbol_col = header.index("settlementDate"), header.index("symbolCode")
    found: dict[str, tuple[int, list[str]]] = {}
    settlement: tuple[str, int] | None = None
    reader = csv.reader(io.StringIO(text), **_DIALECTS[delimiter])
    next(reader)  # the header, already parsed
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue
        lineno = reader.line_num
        if len(cells) != len(header):
            raise DataFormatError(where, f"line {lineno}: {len(cells)} fields but the header has {len(header)}")
        date_text = cells[date_col].strip()
        if settlement is None:
            settlement = (date_text, lineno)
        elif date_text != settlement[0]:
            raise DataFormatError(
                where,
                f"settlementDate values disagree: {settlement[0]!r} (line {settlement[1]}) "
                f"and {date_text!r} (line {lineno})",
            )
        symbol = cells[symbol_col].strip()
        if symbol in wanted:
            if symbol in found:
                raise DataFormatError(where, f"symbol {symbol!r} appears twice (lines {found[symbol][0]} and {lineno})")
            found[symbol] = (lineno, cells)
    if settlement is None:
        raise DataFormatError(where, "no data rows (header only)")
    return settlement, found


def _sniff_header(line: str, where: str) -> tuple[str, list[str]]:
    """Pick the delimiter ('|' or ',') under which the header (the first line) holds every required column."""
    best: list[str] = []
    for delimiter, dialect in _DIALECTS.items():
        header = [name.strip() for name in next(csv.reader([line], **dialect))]
        if all(name in header for name in REQUIRED_COLUMNS):
            return delimiter, header
        if len(header) > len(best):
            best = header
    missing = [name for name in REQUIRED_COLUMNS if name not in best]
    shown = line if len(line) <= 300 else line[:300] + "..."
    raise DataFormatError(where, f"missing columns: {', '.join(missing)}; header found: {shown!r}")


def _parse_settlement(text: str, lineno: int, where: str) -> pd.Timestamp:
    """Parse the file's settlement date, `YYYY-MM-DD` (documented) or `YYYYMMDD`."""
    for fmt in _DATE_FORMATS:
        try:
            return pd.to_datetime(text, format=fmt)
        except ValueError:
            continue
    raise DataFormatError(where, f"line {lineno}: settlementDate {text!r} is not a date (expected YYYY-MM-DD)")


def _quantity(cell: str, column: str, lineno: int, where: str) -> float:
    """A finite, non-negative number (share counts, shares per day, days)."""
    text = cell.strip()
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise DataFormatError(where, f"line {lineno}: {text!r} in column {column!r} is not a number")
    if value < 0:
        raise DataFormatError(where, f"line {lineno}: {text!r} in column {column!r} is negative")
    if column == "daysToCoverQuantity" and value > MAX_DAYS_TO_COVER:
        raise DataFormatError(
            where, f"line {lineno}: {text!r} in column {column!r} is not plausible (at most {MAX_DAYS_TO_COVER:g})"
        )
    return value


def _frame(records: list[dict[str, object]], settlement_date: pd.Timestamp) -> pd.DataFrame:
    """Assemble the output with explicit dtypes, so that an empty result has the same schema."""
    frame = pd.DataFrame.from_records(records, columns=list(OUTPUT_COLUMNS[1:]))
    frame = frame.astype({"symbol": "str", **{out: "float64" for out in QUANTITY_COLUMNS.values()}})
    # explicit unit: an empty DatetimeIndex would otherwise default to a different one
    dtype = f"datetime64[{settlement_date.unit}]"
    frame.insert(0, "settlement_date", pd.Series(settlement_date, index=frame.index, dtype=dtype))
    return frame
