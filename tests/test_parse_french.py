"""Ken French parsers on the real excerpts, the full real zips, and corrupted copies of the excerpts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from smallcap_regime.data.french import FACTOR_COLUMNS, parse_factors, parse_portfolios_me
from smallcap_regime.errors import DataFormatError

from helpers import make_zip

ME_MONTHLY = "french_portfolios_me_monthly_sample.csv"
ME_DAILY = "french_portfolios_me_daily_MODIFIED_sample.csv"
FF_MONTHLY = "french_factors_monthly_sample.csv"
FF_MONTHLY_2024 = "french_factors_monthly_OLDFORMAT_2024_sample.csv"
FF_DAILY = "french_factors_daily_sample.csv"
PORTFOLIOS = [
    "Lo 30", "Med 40", "Hi 30",
    "Lo 20", "Qnt 2", "Qnt 3", "Qnt 4", "Hi 20",
    "Lo 10", "2-Dec", "3-Dec", "4-Dec", "5-Dec", "6-Dec", "7-Dec", "8-Dec", "9-Dec", "Hi 10",
]  # fmt: skip


def _lines(formats_dir: Path, name: str) -> list[bytes]:
    """The excerpt's lines with their original endings (CRLF or LF), so edits keep the real layout."""
    return (formats_dir / name).read_bytes().splitlines(keepends=True)


def _replace_line(lines: list[bytes], lineno: int, old: bytes, new: bytes) -> list[bytes]:
    assert old in lines[lineno - 1], (lineno, lines[lineno - 1])
    return [*lines[: lineno - 1], lines[lineno - 1].replace(old, new, 1), *lines[lineno:]]


def _copy(tmp_path: Path, name: str, content: bytes | list[bytes]) -> bytes:
    """Write a (corrupted) copy to tmp_path and read it back, as the cache would hand it over."""
    path = tmp_path / name
    path.write_bytes(b"".join(content) if isinstance(content, list) else content)
    return path.read_bytes()


# --- real excerpts -------------------------------------------------------------------------------------------


def test_portfolios_monthly_excerpt_takes_value_weighted_section(formats_dir):
    df = parse_portfolios_me((formats_dir / ME_MONTHLY).read_bytes(), ME_MONTHLY)

    assert list(df.columns) == PORTFOLIOS  # `<= 0` dropped
    assert df.shape == (36, 18)
    assert set(df.dtypes) == {np.dtype("float64")}
    assert df.index.name == "date"
    assert df.index[0] == pd.Timestamp("1926-07-31") and df.index[-1] == pd.Timestamp("1929-06-30")
    assert df.index.is_month_end.all() and df.index.is_monotonic_increasing
    assert df.attrs["vintage"] == "202602"
    # 192607 VW: Lo 30 0.06 %, Hi 10 3.67 %; 192608 VW Lo 30 3.14 % (the EW section has 3.79 %)
    assert df.loc["1926-07-31", "Lo 30"] == pytest.approx(0.0006)
    assert df.loc["1926-07-31", "Hi 10"] == pytest.approx(0.0367)
    assert df.loc["1926-08-31", "Lo 30"] == pytest.approx(0.0314)
    assert df.loc["1929-06-30", "7-Dec"] == pytest.approx(0.1206)


def test_factors_monthly_excerpt_stops_before_annual_rows(formats_dir):
    df = parse_factors((formats_dir / FF_MONTHLY).read_bytes(), FF_MONTHLY)

    assert list(df.columns) == list(FACTOR_COLUMNS)
    assert df.shape == (36, 4)
    assert df.index[-1] == pd.Timestamp("1929-06-30")  # the annual rows (1927 Mkt-RF 29.44) did not leak in
    assert df.loc["1926-07-31"].tolist() == pytest.approx([0.0289, -0.0255, -0.0239, 0.0022])
    assert df.loc["1929-06-30", "Mkt-RF"] == pytest.approx(0.0970)
    assert df.attrs["vintage"] == "202602"


def test_factors_2024_layout_with_crlf(formats_dir):
    df = parse_factors((formats_dir / FF_MONTHLY_2024).read_bytes(), FF_MONTHLY_2024)

    assert list(df.columns) == list(FACTOR_COLUMNS)  # no stray "\r" on `RF`
    assert df.shape == (36, 4)
    assert df.loc["1926-07-31", "Mkt-RF"] == pytest.approx(0.0296)  # 2.89 in the 202602 vintage
    assert df.loc["1929-06-30", "SMB"] == pytest.approx(-0.0217)
    assert df.attrs["vintage"] == "202408"


def test_factors_daily_excerpt_iso_dates(formats_dir):
    df = parse_factors((formats_dir / FF_DAILY).read_bytes(), FF_DAILY, daily=True)

    assert df.shape == (36, 4)
    assert df.index[0] == pd.Timestamp("1926-07-01") and df.index[-1] == pd.Timestamp("1926-08-13")
    assert df.loc["1926-07-01"].tolist() == pytest.approx([0.0009, -0.0025, -0.0027, 0.0001])
    assert df.loc["1926-08-13", "Mkt-RF"] == pytest.approx(0.0058)
    assert df.attrs["vintage"] == "202604"


def test_factors_daily_older_yyyymmdd_layout_gives_same_frame(formats_dir):
    lines = _lines(formats_dir, FF_DAILY)
    old = [b",Mkt-RF,SMB,HML,RF\n" if line.startswith(b"Date,") else line for line in lines]
    old = [line[:4] + line[5:7] + line[8:] if line[:2] == b"19" else line for line in old]
    assert old[5].startswith(b"19260701,")

    df = parse_factors(b"".join(old), "old-daily.csv", daily=True)

    pd.testing.assert_frame_equal(df, parse_factors(b"".join(lines), FF_DAILY, daily=True))


def test_portfolios_daily_modified_excerpt_without_title(formats_dir):
    df = parse_portfolios_me((formats_dir / ME_DAILY).read_bytes(), ME_DAILY, daily=True)

    assert list(df.columns) == PORTFOLIOS
    assert df.shape == (36, 18)
    assert df.index[0] == pd.Timestamp("1926-07-01") and df.index[-1] == pd.Timestamp("1926-08-13")
    assert df.loc["1926-07-01", "Lo 30"] == pytest.approx(0.0038)
    assert df.loc["1926-08-13", "7-Dec"] == 0.0  # unpadded "0"
    assert df.loc["1926-08-13", "Hi 10"] == pytest.approx(0.0095)
    assert "vintage" not in df.attrs  # the uploader removed the text header


def test_older_vintage_in_zip_with_upper_case_member_and_old_decile_labels(formats_dir):
    text = (formats_dir / ME_MONTHLY).read_bytes()
    old = (
        text.replace(b"created using the 202602", b"created by CMPT_ME_RETS using the 202211")
        .replace(b"  Average Value Weight Returns -- Monthly", b"  Value Weight Returns -- Monthly")
        .replace(b"  Average Equal Weighted Returns -- Monthly", b"  Equal Weight Returns -- Monthly")
    )
    for n in range(2, 10):
        old = old.replace(b"%d-Dec" % n, b"Dec %d" % n)
    raw = make_zip({"Portfolios_Formed_on_ME.CSV": old})

    df = parse_portfolios_me(raw, "Portfolios_Formed_on_ME_CSV.zip")

    assert df.attrs["vintage"] == "202211"
    pd.testing.assert_frame_equal(df, parse_portfolios_me(text, ME_MONTHLY))


def test_minus_999_is_missing(formats_dir, tmp_path):
    lines = _replace_line(_lines(formats_dir, ME_MONTHLY), 14, b"    0.06,", b"    -999,")

    df = parse_portfolios_me(_copy(tmp_path, ME_MONTHLY, lines), ME_MONTHLY)

    assert np.isnan(df.loc["1926-07-31", "Lo 30"])
    assert df.loc["1926-07-31", "Med 40"] == pytest.approx(0.0153)
    assert df["Lo 30"].notna().sum() == 35


# --- full real files -----------------------------------------------------------------------------------------


def test_real_portfolios_monthly_zip(realdata_dir, formats_dir):
    raw = (realdata_dir / "french" / "Portfolios_Formed_on_ME_CSV.zip").read_bytes()

    df = parse_portfolios_me(raw, "Portfolios_Formed_on_ME_CSV.zip")

    assert df.shape == (1110, 18)
    assert df.index[0] == pd.Timestamp("1926-07-31") and df.index[-1] == pd.Timestamp("2018-12-31")
    assert df.attrs["vintage"] == "202602"
    assert df.loc["1932-08-31", "Lo 10"] == pytest.approx(1.2041)  # a real month above +100 %
    assert df.loc["2018-12-31", "Lo 30"] == pytest.approx(-0.1199)
    assert df.notna().all().all()
    pd.testing.assert_frame_equal(df.iloc[:36], parse_portfolios_me((formats_dir / ME_MONTHLY).read_bytes(), "x"))


def test_real_portfolios_daily_zip(realdata_dir):
    raw = (realdata_dir / "french" / "Portfolios_Formed_on_ME_Daily_CSV.zip").read_bytes()

    df = parse_portfolios_me(raw, "Portfolios_Formed_on_ME_Daily_CSV.zip", daily=True)

    assert df.shape == (24391, 18)
    assert df.index[0] == pd.Timestamp("1926-07-01") and df.index[-1] == pd.Timestamp("2018-12-31")
    assert df.attrs["vintage"] == "202505"
    assert df.loc["1987-10-19", "Hi 30"] == pytest.approx(-0.1891)


def test_real_factors_monthly_zip(realdata_dir):
    raw = (realdata_dir / "french" / "F-F_Research_Data_Factors_CSV.zip").read_bytes()

    df = parse_factors(raw, "F-F_Research_Data_Factors_CSV.zip")

    assert df.shape == (1110, 4)
    assert df.index[0] == pd.Timestamp("1926-07-31") and df.index[-1] == pd.Timestamp("2018-12-31")
    assert df.loc["2018-12-31"].tolist() == pytest.approx([-0.0955, -0.0231, -0.0192, 0.0019])


def test_real_factors_daily_zip(realdata_dir):
    raw = (realdata_dir / "french" / "F-F_Research_Data_Factors_daily_CSV.zip").read_bytes()

    df = parse_factors(raw, "F-F_Research_Data_Factors_daily_CSV.zip", daily=True)

    assert df.shape == (24391, 4)
    assert df.index[-1] == pd.Timestamp("2018-12-31")
    assert df.loc["1987-10-19", "Mkt-RF"] == pytest.approx(-0.1744)
    assert df.attrs["vintage"] == "202604"


# --- corrupted copies ----------------------------------------------------------------------------------------


def test_missing_value_weighted_section(formats_dir, tmp_path):
    lines = _lines(formats_dir, ME_MONTHLY)
    assert lines[11].strip() == b"Average Value Weight Returns -- Monthly"
    raw = _copy(tmp_path, ME_MONTHLY, lines[:11] + lines[51:])  # drop title, header, 36 rows, 2 blanks

    with pytest.raises(DataFormatError, match=r"no value-weighted monthly returns section found .*'Average Equal"):
        parse_portfolios_me(raw, ME_MONTHLY)


def test_monthly_file_has_no_daily_section(formats_dir):
    with pytest.raises(DataFormatError, match=r"^french_portfolios_me_monthly_sample.csv: no value-weighted daily"):
        parse_portfolios_me((formats_dir / ME_MONTHLY).read_bytes(), ME_MONTHLY, daily=True)


def test_header_with_a_column_missing(formats_dir, tmp_path):
    lines = _replace_line(_lines(formats_dir, ME_MONTHLY), 13, b",Lo 30", b"")

    with pytest.raises(DataFormatError, match=r"line 14: 20 fields but the header \(line 13\) has 19"):
        parse_portfolios_me(_copy(tmp_path, ME_MONTHLY, lines), ME_MONTHLY)


def test_factor_header_without_rf(formats_dir, tmp_path):
    lines = _replace_line(_lines(formats_dir, FF_MONTHLY), 5, b",RF", b",Rf")

    with pytest.raises(DataFormatError, match=r"line 5: factor columns missing: RF \(header has Mkt-RF, SMB, HML, Rf"):
        parse_factors(_copy(tmp_path, FF_MONTHLY, lines), FF_MONTHLY)


@pytest.mark.parametrize("cell", ["abc", "nan", ""])
def test_text_in_a_number_column(formats_dir, tmp_path, cell):
    lines = _replace_line(_lines(formats_dir, ME_MONTHLY), 20, b"    1.34,", cell.encode() + b",")

    with pytest.raises(DataFormatError, match=rf"line 20: '{cell}' in column 'Lo 30' is not a number"):
        parse_portfolios_me(_copy(tmp_path, ME_MONTHLY, lines), ME_MONTHLY)


def test_duplicated_dates(formats_dir, tmp_path):
    lines = _replace_line(_lines(formats_dir, ME_MONTHLY), 16, b"192609,", b"192608,")

    with pytest.raises(DataFormatError, match=r"duplicated dates: 1926-08 \(first repeat at line 16\)"):
        parse_portfolios_me(_copy(tmp_path, ME_MONTHLY, lines), ME_MONTHLY)


def test_dates_out_of_order(formats_dir, tmp_path):
    lines = _lines(formats_dir, FF_MONTHLY)
    lines[6], lines[7] = lines[7], lines[6]  # 192609 before 192608

    with pytest.raises(DataFormatError, match=r"dates not increasing: line 8 \(1926-08\) follows 1926-09"):
        parse_factors(_copy(tmp_path, FF_MONTHLY, lines), FF_MONTHLY)


def test_impossible_month(formats_dir, tmp_path):
    lines = _replace_line(_lines(formats_dir, FF_MONTHLY), 11, b"192612,", b"192613,")

    with pytest.raises(DataFormatError, match=r"line 11: '192613' is not a valid date"):
        parse_factors(_copy(tmp_path, FF_MONTHLY, lines), FF_MONTHLY)


def test_annual_rows_glued_to_monthly_table(formats_dir, tmp_path):
    lines = _lines(formats_dir, FF_MONTHLY)
    assert lines[42].strip() == b"Annual Factors: January-December"
    raw = _copy(tmp_path, FF_MONTHLY, lines[:41] + lines[44:])  # drop blank, title and header

    with pytest.raises(DataFormatError, match=r"line 42: '1927' is not a monthly date \(YYYYMM\)"):
        parse_factors(raw, FF_MONTHLY)


def test_daily_file_read_as_monthly(formats_dir):
    with pytest.raises(DataFormatError, match=r"line 6: '1926-07-01' is not a monthly date"):
        parse_factors((formats_dir / FF_DAILY).read_bytes(), FF_DAILY)


def test_values_already_in_decimals(formats_dir, tmp_path):
    """Monthly rows rewritten as decimals (2.89 -> 0.0289); the largest |value| is 192811 Mkt-RF 11.82 %."""
    lines = _lines(formats_dir, FF_MONTHLY)
    rows = range(5, 41)  # 0-based positions of the 36 monthly rows
    for i in rows:
        date, *cells = lines[i].rstrip(b"\r\n").split(b",")
        lines[i] = b",".join([date, *(b"%.4f" % (float(c) / 100) for c in cells)]) + b"\r\n"

    with pytest.raises(DataFormatError, match=r"look like decimals, not percent \(max \|value\| 0.1182 over 36 rows\)"):
        parse_factors(_copy(tmp_path, FF_MONTHLY, lines), FF_MONTHLY)


@pytest.mark.parametrize("value", [b"  450.00", b" -150.00"])
def test_implausible_percent(formats_dir, tmp_path, value):
    lines = _replace_line(_lines(formats_dir, ME_MONTHLY), 20, b"    1.34", value)

    with pytest.raises(DataFormatError, match=r"line 20: -?\d+ in column 'Lo 30' is not a plausible percent return"):
        parse_portfolios_me(_copy(tmp_path, ME_MONTHLY, lines), ME_MONTHLY)


def test_html_page_instead_of_zip(tmp_path):
    raw = _copy(tmp_path, "page.zip", b"\n<!DOCTYPE html>\n<html><body>Service unavailable</body></html>\n")

    with pytest.raises(DataFormatError, match=r"^page.zip: not a zip or CSV: looks like an HTML page"):
        parse_factors(raw, "page.zip")


def test_truncated_zip(realdata_dir, tmp_path):
    raw = (realdata_dir / "french" / "F-F_Research_Data_Factors_CSV.zip").read_bytes()

    with pytest.raises(DataFormatError, match=r"truncated or corrupt zip"):
        parse_factors(_copy(tmp_path, "ff.zip", raw[: len(raw) // 2]), "ff.zip")


def test_zip_without_csv_member(tmp_path):
    raw = _copy(tmp_path, "ff.zip", make_zip({"README.txt": b"hello"}))

    with pytest.raises(DataFormatError, match=r"zip holds no CSV member \(members: README.txt\)"):
        parse_factors(raw, "ff.zip")


def test_zip_with_two_csv_members(formats_dir, tmp_path):
    data = (formats_dir / FF_MONTHLY).read_bytes()
    raw = _copy(tmp_path, "ff.zip", make_zip({"a.csv": data, "b.CSV": data}))

    with pytest.raises(DataFormatError, match=r"zip holds 2 CSV members, expected one: a.csv, b.CSV"):
        parse_factors(raw, "ff.zip")


def test_empty_file():
    with pytest.raises(DataFormatError, match=r"^ff.csv: empty file"):
        parse_factors(b"\r\n", "ff.csv")
