"""FRED series parser on the three real header layouts, the full real downloads, and corrupted copies."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from smallcap_regime.data.fred import parse_fred_csv
from smallcap_regime.errors import DataFormatError

VIX = "fred_series_fredgraph_VIXCLS_daily_sample.csv"
VIX_OLD = "fred_series_fredgraph_OLDFORMAT_VIXCLS_daily_sample.csv"
UNRATE = "fred_series_fredgraph_UNRATE_monthly_sample.csv"
NFCI = "fred_series_fredgraph_NFCI_weekly_sample.csv"
T10Y2Y = "fred_series_apistyle_T10Y2Y_sample.csv"
REAL_IDS = sorted(
    "AAA BAA BAA10Y BAMLH0A0HYM2 CPIAUCSL DGS10 DGS2 DTWEXBGS FEDFUNDS GS1 GS10 GS2 GS5 NFCI TB3MS TB6MS UMCSENT "
    "UNRATE VIXCLS".split()
)


def _copy(tmp_path: Path, name: str, content: bytes) -> bytes:
    """Write a (corrupted) copy to tmp_path and read it back, as the cache would hand it over."""
    path = tmp_path / name
    path.write_bytes(content)
    return path.read_bytes()


# --- real excerpts -------------------------------------------------------------------------------------------


def test_current_layout_drops_empty_holiday_row(formats_dir):
    s = parse_fred_csv((formats_dir / VIX).read_bytes(), "VIXCLS", VIX)

    assert s.name == "VIXCLS" and s.index.name == "date" and s.dtype == "float64"
    assert len(s) == 35  # 36 rows, 1990-02-19 (Presidents' Day) empty
    assert pd.Timestamp("1990-02-19") not in s.index
    assert s.index[0] == pd.Timestamp("1990-01-02") and s.iloc[0] == 17.24
    assert s["1990-01-09"] == 22.2
    assert s.index[-1] == pd.Timestamp("1990-02-20") and s.iloc[-1] == 22.78
    assert s.index.is_monotonic_increasing and s.index.is_unique


def test_old_layout_with_dot_missing_matches_current_layout(formats_dir):
    old = parse_fred_csv((formats_dir / VIX_OLD).read_bytes(), "VIXCLS", VIX_OLD)

    pd.testing.assert_series_equal(old, parse_fred_csv((formats_dir / VIX).read_bytes(), "VIXCLS", VIX))


def test_monthly_unrate_dated_on_the_first(formats_dir):
    s = parse_fred_csv((formats_dir / UNRATE).read_bytes(), "UNRATE", UNRATE, valid_range=(0.0, 30.0))

    assert len(s) == 36
    assert (s.index.day == 1).all()
    assert s["1990-01-01"] == 5.4 and s["1992-12-01"] == 7.4
    assert s.max() == 7.8


def test_weekly_nfci_on_fridays(formats_dir):
    s = parse_fred_csv((formats_dir / NFCI).read_bytes(), "NFCI", NFCI)

    assert len(s) == 36
    assert (s.index.dayofweek == 4).all()
    assert s.iloc[0] == 0.034 and s.idxmin() == pd.Timestamp("1990-06-29") and s.min() == -0.157


def test_api_dump_with_date_header(formats_dir):
    s = parse_fred_csv((formats_dir / T10Y2Y).read_bytes(), "T10Y2Y", T10Y2Y)

    assert len(s) == 36
    assert s.index[0] == pd.Timestamp("1990-01-02") and s.iloc[0] == 0.07
    assert s["1990-01-16"] == 0.1 and s.iloc[-1] == 0.09


def test_crlf_and_bom_give_the_same_series(formats_dir):
    raw = (formats_dir / UNRATE).read_bytes()

    s = parse_fred_csv(b"\xef\xbb\xbf" + raw.replace(b"\n", b"\r\n"), "UNRATE", UNRATE)

    pd.testing.assert_series_equal(s, parse_fred_csv(raw, "UNRATE", UNRATE))


def test_interior_gap_and_unsorted_rows(formats_dir):
    header, *rows = (formats_dir / UNRATE).read_bytes().splitlines(keepends=True)
    rows[5] = b"1990-06-01,\n"  # interior gap, as in UNRATE 2025-10-01
    raw = b"".join([header, *reversed(rows)])

    s = parse_fred_csv(raw, "UNRATE", UNRATE)

    assert len(s) == 35 and pd.Timestamp("1990-06-01") not in s.index
    assert s.index.is_monotonic_increasing
    assert s["1990-05-01"] == 5.4 and s["1990-07-01"] == 5.5


def test_picks_the_requested_column_of_a_multi_series_download():
    raw = b"observation_date,DGS2,DGS10\n1999-01-04,4.58,4.69\n1999-01-05,,4.72\n"

    s = parse_fred_csv(raw, "DGS10", "multi.csv")

    assert s.tolist() == [4.69, 4.72]


# --- full real files -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("series_id", REAL_IDS)
def test_real_download_parses(realdata_dir, series_id):
    path = realdata_dir / "fred" / f"{series_id}.csv"

    s = parse_fred_csv(path.read_bytes(), series_id, path.name)

    assert len(s) > 300
    assert s.name == series_id and s.notna().all()
    assert s.index.is_monotonic_increasing and s.index.is_unique
    assert s.index[-1].year == 2018


def test_real_dgs10(realdata_dir):
    s = parse_fred_csv((realdata_dir / "fred" / "DGS10.csv").read_bytes(), "DGS10", "DGS10.csv", valid_range=(-5, 30))

    assert len(s) == 5003  # 5216 rows, 213 empty holidays
    assert s.index[0] == pd.Timestamp("1999-01-04") and s.iloc[0] == 4.69
    assert s.index[-1] == pd.Timestamp("2018-12-31") and s.iloc[-1] == 2.69


def test_real_unrate_starts_1948(realdata_dir):
    s = parse_fred_csv((realdata_dir / "fred" / "UNRATE.csv").read_bytes(), "UNRATE", "UNRATE.csv")

    assert len(s) == 852
    assert s.index[0] == pd.Timestamp("1948-01-01") and s.iloc[0] == 3.4


# --- corrupted copies ----------------------------------------------------------------------------------------


def test_html_body(tmp_path):
    raw = _copy(tmp_path, "DGS10.csv", b"<!DOCTYPE html><html><title>Error</title></html>")

    with pytest.raises(DataFormatError, match=r"^DGS10.csv: not a CSV: looks like an HTML page"):
        parse_fred_csv(raw, "DGS10", "DGS10.csv")


def test_empty_body():
    with pytest.raises(DataFormatError, match=r"^DGS10.csv: empty response body"):
        parse_fred_csv(b"", "DGS10", "DGS10.csv")


def test_header_only(formats_dir, tmp_path):
    raw = _copy(tmp_path, UNRATE, (formats_dir / UNRATE).read_bytes().splitlines(keepends=True)[0] + b"\n")

    with pytest.raises(DataFormatError, match=r"no observations \(header only\)"):
        parse_fred_csv(raw, "UNRATE", UNRATE)


def test_no_valid_observation(tmp_path):
    raw = _copy(tmp_path, "DGS10.csv", b"DATE,DGS10\n2018-12-24,.\n2018-12-25,.\n")

    with pytest.raises(DataFormatError, match=r"no valid observation: all 2 values are missing"):
        parse_fred_csv(raw, "DGS10", "DGS10.csv")


@pytest.mark.parametrize("date", [b"1990/03/01", b"1990-13-01", b"1990-3-1"])
def test_bad_date(formats_dir, tmp_path, date):
    raw = _copy(tmp_path, UNRATE, (formats_dir / UNRATE).read_bytes().replace(b"1990-03-01", date))

    with pytest.raises(DataFormatError, match=rf"line 4: bad date '{date.decode()}' \(expected YYYY-MM-DD\)"):
        parse_fred_csv(raw, "UNRATE", UNRATE)


@pytest.mark.parametrize("value", ["n/a", "NaN", "5,2"])
def test_non_numeric_value(formats_dir, tmp_path, value):
    raw = (formats_dir / UNRATE).read_bytes().replace(b"1990-03-01,5.2", b'1990-03-01,"' + value.encode() + b'"')

    with pytest.raises(DataFormatError, match=rf"line 4: value '{value}' is not a number \(missing values must be"):
        parse_fred_csv(_copy(tmp_path, UNRATE, raw), "UNRATE", UNRATE)


def test_duplicated_dates(formats_dir, tmp_path):
    raw = (formats_dir / VIX).read_bytes().replace(b"1990-01-04,", b"1990-01-03,")

    with pytest.raises(DataFormatError, match=r"duplicated dates: 1990-01-03 \(first at lines 3 and 4\)"):
        parse_fred_csv(_copy(tmp_path, VIX, raw), "VIXCLS", VIX)


def test_value_outside_valid_range_names_first_offender(formats_dir, tmp_path):
    """UNRATE saved in basis points (5.4 -> 540)."""
    header, *rows = (formats_dir / UNRATE).read_text().splitlines()
    rows = [f"{date},{float(value) * 100:g}" for date, value in (row.split(",") for row in rows)]
    raw = _copy(tmp_path, UNRATE, "\n".join([header, *rows]).encode())

    with pytest.raises(
        DataFormatError,
        match=r"36 value\(s\) outside the expected range; first 1990-01-01 = 540, "
        r"expected values between -5 and 30; wrong units\?",
    ):
        parse_fred_csv(raw, "UNRATE", UNRATE, valid_range=(-5, 30))


@pytest.mark.parametrize("series_id", ["DGS10", "unrate"])
def test_series_column_missing_names_columns_found(formats_dir, series_id):
    with pytest.raises(DataFormatError, match=rf"no column '{series_id}' \(columns found: observation_date, UNRATE\)"):
        parse_fred_csv((formats_dir / UNRATE).read_bytes(), series_id, UNRATE)


def test_unexpected_date_column(formats_dir):
    raw = (formats_dir / UNRATE).read_bytes().replace(b"observation_date,", b"Date,")

    with pytest.raises(DataFormatError, match=r"unexpected header 'Date,UNRATE': the first column should be one of"):
        parse_fred_csv(raw, "UNRATE", UNRATE)


def test_ragged_row(formats_dir, tmp_path):
    raw = (formats_dir / UNRATE).read_bytes().replace(b"1990-03-01,5.2", b"1990-03-01,5.2,x")

    with pytest.raises(DataFormatError, match=r"line 4: 3 fields but the header has 2"):
        parse_fred_csv(_copy(tmp_path, UNRATE, raw), "UNRATE", UNRATE)
