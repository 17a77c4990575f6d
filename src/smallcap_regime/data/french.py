"""Parsers for Ken French Data Library files (`Portfolios_Formed_on_ME`, `F-F_Research_Data_Factors`).

The library serves `<dataset>_CSV.zip` archives holding one text file made of sections: an optional title
line, a column-header line whose first cell is empty (or `Date`), then one row per period. Layouts differ
between vintages (see `docs/formats.md`, sections 1-3), so sections are found by their content rather
than by fixed line numbers. Both parsers return **decimal** returns; the files hold percent.
"""

from __future__ import annotations

import csv
import io
import math
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from smallcap_regime.errors import DataFormatError

Frequency = Literal["monthly", "daily"]

MISSING_CODES = (-99.99, -999.0)
FACTOR_COLUMNS = ("Mkt-RF", "SMB", "HML", "RF")
# Percent per period. A loss beyond -100 % is impossible; the upper bound leaves room for the real extremes
# (VW `Lo 10` +120.41 % in 1932-08, EW +129.75 %) while still catching basis points or doubly scaled data.
PLAUSIBLE_PERCENT = (-100.0, 300.0)
# (minimum rows, max |value|): with at least that many rows, real percent data always has some |value| above
# the bound (P < 1e-5 for Mkt-RF alone), while decimal data stays below it even over 1926-2018.
_DECIMAL_HINT: dict[Frequency, tuple[int, float]] = {"monthly": (12, 2.0), "daily": (20, 0.5)}
# Typical level: the median |value| over all columns, in percent. Real files: 1.2 (monthly factors, RF included)
# to 3.5 (monthly portfolios), 0.18 to 0.5 daily; a factor of 100 either way falls far outside.
TYPICAL_ABS_PERCENT: dict[Frequency, tuple[float, float]] = {"monthly": (0.2, 30.0), "daily": (0.03, 5.0)}
# Largest CSV member unpacked from a zip: the real files are under 3 MB; a zip bomb is refused before it expands.
MAX_MEMBER_BYTES = 256 * 2**20

_DATE_PATTERN: dict[Frequency, re.Pattern[str]] = {
    "monthly": re.compile(r"\d{6}"),
    "daily": re.compile(r"\d{8}|\d{4}-\d{2}-\d{2}"),
}
_DATE_HINT: dict[Frequency, str] = {"monthly": "YYYYMM", "daily": "YYYYMMDD or YYYY-MM-DD"}
_DATE_LABEL: dict[Frequency, str] = {"monthly": "%Y-%m", "daily": "%Y-%m-%d"}
# Anything that starts a data row in any section: YYYY (annual), YYYYMM, YYYYMMDD, YYYY-MM-DD.
_ANY_DATE = re.compile(r"\d{4}(?:\d{2}){0,2}|\d{4}-\d{2}-\d{2}")
_VALUE_WEIGHT = re.compile(r"value[- ]weight", re.IGNORECASE)
_VINTAGE = re.compile(r"\b(\d{6}) CRSP database")
_OLD_DECILE = re.compile(r"Dec (\d)")
_NOT_USED_COLUMN = "<= 0"


@dataclass
class _Table:
    """One section of a French file: header cells and raw data rows, with 1-based line numbers."""

    title: str | None
    header_line: int
    header: list[str]
    rows: list[tuple[int, list[str]]] = field(default_factory=list)
    preamble: str = ""  # every non-blank line between the previous blank line and the header (multi-line titles)


def parse_portfolios_me(raw: bytes, where: str, *, daily: bool = False,
                        max_bytes: int = MAX_MEMBER_BYTES) -> pd.DataFrame:
    """Parse the value-weighted returns of `Portfolios_Formed_on_ME` (monthly or daily file).

    Parameters
    ----------
    raw
        The `_CSV.zip` archive as served, or the CSV bytes it contains.
    where
        File name or URL, used in error messages.
    daily
        Parse the daily file (`Portfolios_Formed_on_ME_Daily`) instead of the monthly one.
    max_bytes
        Largest CSV member accepted from a zip archive.

    Returns
    -------
    pandas.DataFrame
        Shape (periods, 18): float64 **decimal** returns per period (1.53 % -> 0.0153), NaN where the file
        says -99.99 or -999. Columns are the file's portfolio labels (`Lo 30`, `Med 40`, `Hi 30`, `Lo 20` ..
        `Hi 20`, `Lo 10`, `2-Dec` .. `9-Dec`, `Hi 10`) without the unused `<= 0`. The index is a
        DatetimeIndex named `date`: month ends for monthly data, trading days for daily data, strictly
        increasing. `attrs["vintage"]` holds the CRSP vintage (e.g. "202602") when the file states it.

    Raises
    ------
    DataFormatError
        If the input is not a French CSV (or zip of one, within `max_bytes` unpacked), has no value-weighted
        section of the requested frequency, holds malformed, duplicated, unordered or implausible values, or
        the CSV reader fails (e.g. a field over the csv module's size limit).
    """
    freq: Frequency = "daily" if daily else "monthly"
    text = _read_text(raw, where, max_bytes)
    table = _value_weighted_table(_split_tables(text, where), freq, where)
    return _to_frame(table, freq, text, where)


def parse_factors(raw: bytes, where: str, *, daily: bool = False,
                  max_bytes: int = MAX_MEMBER_BYTES) -> pd.DataFrame:
    """Parse the Fama-French factors file (`F-F_Research_Data_Factors`, monthly or daily).

    Parameters
    ----------
    raw
        The `_CSV.zip` archive as served, or the CSV bytes it contains.
    where
        File name or URL, used in error messages.
    daily
        Parse the daily file (`F-F_Research_Data_Factors_daily`) instead of the monthly one.
    max_bytes
        Largest CSV member accepted from a zip archive.

    Returns
    -------
    pandas.DataFrame
        Shape (periods, 4) for the 3-factor file: float64 **decimal** returns per period in the file's
        columns (`Mkt-RF`, `SMB`, `HML`, `RF`; `RF` is the 1-month T-bill return per period). The index is a
        DatetimeIndex named `date` (month ends or trading days), strictly increasing; only the first table
        is read, so the annual section never leaks in. `attrs["vintage"]` holds the CRSP vintage if stated.

    Raises
    ------
    DataFormatError
        If the input is not a French CSV (or zip of one, within `max_bytes` unpacked), the first table lacks
        the factor columns or is not of the requested frequency, values are malformed, duplicated, unordered
        or implausible, or the CSV reader fails.
    """
    freq: Frequency = "daily" if daily else "monthly"
    text = _read_text(raw, where, max_bytes)
    tables = _split_tables(text, where)
    if not tables:
        raise DataFormatError(where, "no factor table found (expected a ',Mkt-RF,SMB,HML,RF' header line)")
    table = tables[0]
    missing = [name for name in FACTOR_COLUMNS if name not in table.header[1:]]
    if missing:
        raise DataFormatError(
            where,
            f"line {table.header_line}: factor columns missing: {', '.join(missing)} "
            f"(header has {', '.join(table.header[1:])})",
        )
    return _to_frame(table, freq, text, where)


def _read_text(raw: bytes, where: str, max_bytes: int) -> str:
    """Return the CSV text of `raw`, unzipping it when it is a zip archive."""
    if raw.startswith(b"PK"):
        raw = _zip_member(raw, where, max_bytes)
    elif raw.lstrip()[:1] == b"<":
        raise DataFormatError(where, "not a zip or CSV: looks like an HTML page")
    if not raw.strip():
        raise DataFormatError(where, "empty file")
    # The files are ASCII; undecodable bytes become U+FFFD and are then reported as bad numbers if in data rows.
    return raw.decode("utf-8-sig", errors="replace")


def _zip_member(raw: bytes, where: str, max_bytes: int) -> bytes:
    """Return the bytes of the single `.csv`/`.CSV` member of the zip archive `raw`, at most `max_bytes`."""
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            names = archive.namelist()
            members = [name for name in names if name.lower().endswith(".csv")]
            if not members:
                raise DataFormatError(where, f"zip holds no CSV member (members: {', '.join(names) or 'none'})")
            if len(members) > 1:
                listed = ", ".join(members)
                raise DataFormatError(where, f"zip holds {len(members)} CSV members, expected one: {listed}")
            # the declared size can lie: read one byte past the bound to know
            with archive.open(members[0]) as member:
                data = member.read(max_bytes + 1)
            if len(data) > max_bytes:
                raise DataFormatError(where, f"zip member {members[0]} unpacks to more than {max_bytes} bytes")
            return data
    except (zipfile.BadZipFile, EOFError, zlib.error, NotImplementedError) as exc:
        raise DataFormatError(where, f"truncated or corrupt zip ({exc})") from exc


def _split_tables(text: str, where: str) -> list[_Table]:
    """Split the file into tables: a header line (first cell empty or `Date`) plus the data rows after it.

    A table ends at the first line that is not a data row (blank line, title, trailer). Its title is the line
    directly above the header, if that line is neither blank nor data.
    """
    try:
        return _read_tables(text)
    except csv.Error as exc:
        raise DataFormatError(where, f"not a readable CSV ({exc})") from None


def _read_tables(text: str) -> list[_Table]:
    tables: list[_Table] = []
    current: _Table | None = None
    previous: str | None = None  # text of the line above, None if blank or a data row
    block: list[str] = []  # the non-blank, non-data lines since the last blank line or data row
    reader = csv.reader(io.StringIO(text))
    for cells in reader:
        first = cells[0].strip() if cells else ""
        if current is not None and _ANY_DATE.fullmatch(first):
            current.rows.append((reader.line_num, cells))
            previous, block = None, []
            continue
        if _is_header(cells):
            current = _Table(title=previous, header_line=reader.line_num, header=[c.strip() for c in cells],
                             preamble=" ".join(block))
            tables.append(current)
        else:
            current = None
        previous = ",".join(cells).strip() or None
        block = [*block, previous] if previous else []
    return tables


def _is_header(cells: list[str]) -> bool:
    """Whether a line is a column header: first cell empty or `Date`, and some non-numeric label after it."""
    if len(cells) < 2 or cells[0].strip().lower() not in ("", "date"):
        return False
    labels = [c.strip() for c in cells[1:]]
    return any(label and not _ANY_DATE.fullmatch(label) and not _is_number(label) for label in labels)


def _is_number(text: str) -> bool:
    """Whether `text` is a finite number (`float` alone would also accept 'nan' and 'inf')."""
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _value_weighted_table(tables: list[_Table], freq: Frequency, where: str) -> _Table:
    """Pick the value-weighted returns section of the requested frequency.

    A file whose only table has no title (a user re-save holding just the value-weighted returns) is taken
    as that section.
    """
    matches = [t for t in tables if t.title and _VALUE_WEIGHT.search(t.title) and freq in t.title.lower()]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        lines = ", ".join(str(t.header_line - 1) for t in matches)
        raise DataFormatError(where, f"{len(matches)} value-weighted {freq} returns sections found (lines {lines})")
    if len(tables) == 1 and tables[0].title is None:
        return tables[0]
    titles = ", ".join(repr(t.title) for t in tables if t.title) or "none"
    raise DataFormatError(where, f"no value-weighted {freq} returns section found (section titles: {titles})")


def _to_frame(table: _Table, freq: Frequency, text: str, where: str) -> pd.DataFrame:
    """Convert a table of percent returns into the checked, decimal DataFrame described by the parsers."""
    if not table.rows:
        raise DataFormatError(where, f"line {table.header_line}: table has a header but no data rows")
    columns = _column_names(table, where)
    dates = _parse_dates(table, freq, where)
    values = _parse_values(table, columns, where)
    values[np.isin(values, MISSING_CODES)] = np.nan

    keep = [i for i, name in enumerate(columns) if name != _NOT_USED_COLUMN]
    columns = [columns[i] for i in keep]
    values = values[:, keep]
    linenos = [lineno for lineno, _ in table.rows]
    _check_increasing(dates, linenos, freq, where)
    _check_percent(values, columns, linenos, freq, where)

    frame = pd.DataFrame(values / 100.0, index=dates, columns=columns, dtype="float64")
    vintage = _VINTAGE.search(text.split("\n", 1)[0])
    if vintage:
        frame.attrs["vintage"] = vintage.group(1)
    return frame


def _column_names(table: _Table, where: str) -> list[str]:
    """Header labels after the date cell, with old decile labels `Dec 2` renamed to the current `2-Dec`."""
    names = [_OLD_DECILE.sub(r"\1-Dec", name) for name in table.header[1:]]
    for position, name in enumerate(names, start=2):
        if not name:
            raise DataFormatError(where, f"line {table.header_line}: column header cell {position} is empty")
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise DataFormatError(where, f"line {table.header_line}: duplicated column names: {', '.join(duplicated)}")
    return names


def _parse_dates(table: _Table, freq: Frequency, where: str) -> pd.DatetimeIndex:
    """Parse the first cell of every row: month ends for monthly data, the day itself for daily data."""
    pattern = _DATE_PATTERN[freq]
    texts = []
    for lineno, cells in table.rows:
        text = cells[0].strip()
        if not pattern.fullmatch(text):
            raise DataFormatError(where, f"line {lineno}: '{text}' is not a {freq} date ({_DATE_HINT[freq]})")
        texts.append(text.replace("-", ""))
    fmt = "%Y%m" if freq == "monthly" else "%Y%m%d"
    dates = pd.to_datetime(pd.Series(texts, dtype="str"), format=fmt, errors="coerce")
    if dates.isna().any():
        position = int(np.flatnonzero(dates.isna().to_numpy())[0])
        lineno, cells = table.rows[position]
        raise DataFormatError(where, f"line {lineno}: '{cells[0].strip()}' is not a valid date")
    if freq == "monthly":
        dates = dates + pd.offsets.MonthEnd(0)
    return pd.DatetimeIndex(dates, name="date")


def _parse_values(table: _Table, columns: list[str], where: str) -> np.ndarray:
    """Parse the numeric cells of every row into a float array of shape (rows, columns)."""
    width = len(columns) + 1
    values = np.empty((len(table.rows), len(columns)), dtype="float64")
    for row, (lineno, cells) in enumerate(table.rows):
        if len(cells) != width:
            raise DataFormatError(
                where, f"line {lineno}: {len(cells)} fields but the header (line {table.header_line}) has {width}"
            )
        try:
            numbers = [float(cell) for cell in cells[1:]]
        except ValueError:
            numbers = []
        if len(numbers) != len(columns) or not all(map(math.isfinite, numbers)):
            col = next(i for i, cell in enumerate(cells[1:]) if not _is_number(cell))
            cell = cells[col + 1].strip()
            raise DataFormatError(where, f"line {lineno}: '{cell}' in column '{columns[col]}' is not a number")
        values[row] = numbers
    return values


def _check_increasing(dates: pd.DatetimeIndex, linenos: list[int], freq: Frequency, where: str) -> None:
    """Dates must be strictly increasing; name duplicates first, since they are the common corruption."""
    label = _DATE_LABEL[freq]
    duplicated = dates[dates.duplicated()]
    if len(duplicated):
        shown = ", ".join(dict.fromkeys(duplicated.strftime(label)))
        first = linenos[int(np.flatnonzero(dates.duplicated())[0])]
        raise DataFormatError(where, f"duplicated dates: {shown} (first repeat at line {first})")
    steps = np.flatnonzero(np.diff(dates.asi8) <= 0)
    if len(steps):
        i = int(steps[0]) + 1
        raise DataFormatError(
            where,
            f"dates not increasing: line {linenos[i]} ({dates[i].strftime(label)}) "
            f"follows {dates[i - 1].strftime(label)}",
        )


def _check_percent(values: np.ndarray, columns: list[str], linenos: list[int], freq: Frequency, where: str) -> None:
    """Reject values outside the plausible percent range, and data whose level looks like decimals or basis points."""
    low, high = PLAUSIBLE_PERCENT
    outside = np.argwhere((values < low) | (values > high))  # NaN compares False
    if len(outside):
        row, col = outside[0]
        raise DataFormatError(
            where,
            f"line {linenos[row]}: {values[row, col]:g} in column '{columns[col]}' is not a plausible percent "
            f"return (expected {low:g} to {high:g}); wrong units?",
        )
    if np.isnan(values).all():
        raise DataFormatError(where, "all values are missing (-99.99 or -999)")
    min_rows, bound = _DECIMAL_HINT[freq]
    if len(values) < min_rows:
        return  # too few rows to judge the units
    largest = float(np.nanmax(np.abs(values)))
    if largest < bound:
        raise DataFormatError(
            where, f"values look like decimals, not percent (max |value| {largest:g} over {len(values)} rows)"
        )
    low, high = TYPICAL_ABS_PERCENT[freq]
    typical = float(np.nanmedian(np.abs(values)))
    if not low <= typical <= high:
        raise DataFormatError(
            where, f"median |value| {typical:g} is outside the typical {freq} level of percent returns "
                   f"({low:g} to {high:g}); wrong units?"
        )


# ---------------------------------------------------------------------------------------------------------------
# 25 portfolios formed on size and book-to-market (`25_Portfolios_5x5`)

#: The 25 portfolios in file order: size quintile i (ME1 smallest, NYSE breakpoints) x BE/ME quintile j (BM1
#: lowest). The file labels the corners `SMALL LoBM`, `SMALL HiBM`, `BIG LoBM`, `BIG HiBM`; they are renamed.
PORTFOLIOS_25 = tuple(f"ME{i} BM{j}" for i in range(1, 6) for j in range(1, 6))
#: Fields of the parsed frame (column ``"<field>/<portfolio>"``) -> meaning and unit.
FIELDS_25 = {
    "ret": "value-weighted monthly total return, decimal",
    "firms": "number of firms in the portfolio",
    "size": "average market cap of its firms at the end of the previous month, $ millions",
    "beme": "value-weighted average BE(fiscal year t-1) / ME(June t) of the portfolio formed in June t, ratio",
}
# BE/ME of a portfolio (ratio). Real extremes 0.10 (big growth) to 48 (small value, 1930s); percent would be x100.
PLAUSIBLE_BEME = (0.0, 500.0)
TYPICAL_BEME = (0.05, 10.0)  # median over all portfolios and months; real file 0.79
_CORNERS = {"SMALL": "ME1", "BIG": "ME5", "LoBM": "BM1", "HiBM": "BM5"}
_BEME_JUNE = re.compile(r"BE_FYt-1\s*/\s*ME_June", re.IGNORECASE)
_FIRMS = re.compile(r"number of firms", re.IGNORECASE)
_SIZE = re.compile(r"average (market cap|firm size)", re.IGNORECASE)


def portfolio_field(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """One field of a parsed `25_Portfolios_5x5` frame: (months, 25), columns ``ME1 BM1`` .. ``ME5 BM5``."""
    columns = [f"{name}/{p}" for p in PORTFOLIOS_25]
    return frame[columns].set_axis(list(PORTFOLIOS_25), axis=1)


def parse_portfolios_25(raw: bytes, where: str, *, daily: bool = False,
                        max_bytes: int = MAX_MEMBER_BYTES) -> pd.DataFrame:
    """Parse `25_Portfolios_5x5` (5 size x 5 book-to-market portfolios, monthly sections).

    Parameters
    ----------
    raw
        The `_CSV.zip` archive as served, or the CSV bytes it contains.
    where
        File name or URL, used in error messages.
    daily
        Must be False: the library's daily version of this file has no book-to-market section.
    max_bytes
        Largest CSV member accepted from a zip archive.

    Returns
    -------
    pandas.DataFrame
        Shape (months, 100), float64, on a month-end DatetimeIndex named `date`, strictly increasing. Columns
        ``"<field>/<portfolio>"`` for the fields of :data:`FIELDS_25` (``ret`` decimal returns, ``firms``
        counts, ``size`` average market cap in $ millions, ``beme`` the value-weighted average
        ``BE_FYt-1/ME_June t``) and the portfolios of :data:`PORTFOLIOS_25`; NaN where the file says -99.99 or
        -999. ``beme`` in the row of month m belongs to the portfolios formed in the June before m (July t ..
        June t+1 -> formation year t), weighted by each firm's market cap of that month: the row of July t is
        the formation value. The equal-weighted, annual, BE/ME(Dec t-1), operating-profitability and
        investment sections are not read. `attrs["vintage"]` holds the CRSP vintage when stated.

    Raises
    ------
    DataFormatError
        If a section is missing or ambiguous, a section lacks one of the 25 portfolios, the sections cover
        different months, or values are malformed, duplicated, unordered or implausible (returns outside the
        percent range, negative or fractional firm counts, negative market caps, BE/ME <= 0 or in percent).
    """
    if daily:
        raise DataFormatError(where, "25_Portfolios_5x5 is parsed from its monthly file only")
    text = _read_text(raw, where, max_bytes)
    tables = _split_tables(text, where)
    sections = {
        "ret": _value_weighted_table(tables, "monthly", where),
        "firms": _one_section(tables, _FIRMS, "number of firms", where),
        "size": _one_section(tables, _SIZE, "average market cap", where),
        "beme": _one_section(tables, _BEME_JUNE, "value-weighted average BE_FYt-1/ME_June t", where),
    }
    frames = {}
    for name, table in sections.items():
        _rename_corners(table, where)
        if name == "ret":
            frame = _to_frame(table, "monthly", text, where)
        else:
            frame = _level_frame(table, name, where)
        missing = [p for p in PORTFOLIOS_25 if p not in frame.columns]
        if missing:
            raise DataFormatError(where, f"line {table.header_line}: {FIELDS_25[name].split(',')[0]} section lacks "
                                         f"portfolio(s) {', '.join(missing)}")
        frames[name] = frame[list(PORTFOLIOS_25)]
    dates = frames["ret"].index
    for name, frame in frames.items():
        if not frame.index.equals(dates):
            span = f"{frame.index[0]:%Y-%m}..{frame.index[-1]:%Y-%m}"
            raise DataFormatError(where, f"the {name} section covers {span} ({len(frame)} months) but the returns "
                                         f"cover {dates[0]:%Y-%m}..{dates[-1]:%Y-%m} ({len(dates)} months)")
    out = pd.concat({name: frame for name, frame in frames.items()}, axis=1)
    out.columns = [f"{name}/{p}" for name, p in out.columns]
    vintage = _VINTAGE.search(text.split("\n", 1)[0])
    if vintage:
        out.attrs["vintage"] = vintage.group(1)
    return out.rename_axis("date")


def _one_section(tables: list[_Table], pattern: re.Pattern[str], label: str, where: str) -> _Table:
    """The single monthly section whose title block matches ``pattern``."""
    matches = [t for t in tables if pattern.search(t.preamble) and t.rows and len(t.rows[0][1][0].strip()) == 6]
    if len(matches) == 1:
        return matches[0]
    if matches:
        lines = ", ".join(str(t.header_line) for t in matches)
        raise DataFormatError(where, f"{len(matches)} monthly {label} sections found (header lines {lines})")
    titles = ", ".join(repr(t.title) for t in tables if t.title) or "none"
    raise DataFormatError(where, f"no monthly {label} section found (section titles: {titles})")


def _rename_corners(table: _Table, where: str) -> None:
    """`SMALL LoBM` -> `ME1 BM1` etc., so every section has the labels of :data:`PORTFOLIOS_25`."""
    renamed = []
    for label in table.header:
        for old, new in _CORNERS.items():
            label = re.sub(rf"\b{old}\b", new, label)
        renamed.append(label)
    table.header = renamed


def _level_frame(table: _Table, name: str, where: str) -> pd.DataFrame:
    """A monthly section of levels (counts, market caps, BE/ME), checked for its field's plausible values."""
    if not table.rows:
        raise DataFormatError(where, f"line {table.header_line}: table has a header but no data rows")
    columns = _column_names(table, where)
    dates = _parse_dates(table, "monthly", where)
    values = _parse_values(table, columns, where)
    values[np.isin(values, MISSING_CODES)] = np.nan
    linenos = [lineno for lineno, _ in table.rows]
    _check_increasing(dates, linenos, "monthly", where)
    finite = np.isfinite(values)
    if name == "firms":
        bad = finite & ((values < 0) | (values != np.round(values)))
        expected = "a count of firms (integer >= 0)"
    elif name == "size":
        bad = finite & (values < 0)
        expected = "an average market cap in $ millions (>= 0)"
    else:
        low, high = PLAUSIBLE_BEME
        bad = finite & ((values <= low) | (values > high))
        expected = f"a book-to-market ratio ({low:g} < BE/ME <= {high:g})"
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataFormatError(where, f"line {linenos[row]}: {values[row, col]:g} in column '{columns[col]}' is not "
                                     f"{expected}")
    if name == "beme" and finite.any():
        typical, (low, high) = float(np.nanmedian(values)), TYPICAL_BEME
        if not low <= typical <= high:
            raise DataFormatError(where, f"median BE/ME {typical:g} is outside the typical {low:g} to {high:g}; "
                                         "wrong units (percent?)")
    return pd.DataFrame(values, index=dates, columns=columns, dtype="float64")
