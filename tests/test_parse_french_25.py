"""`25_Portfolios_5x5` (size x book-to-market): parser on the real excerpt, the full real zip and corrupted copies,
and the size quintiles' aggregate book-to-market built from it (hand-checked against the file's own numbers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from smallcap_regime.data.book_to_market import (
    formation_book_to_market,
    formation_year,
    size_quintile_book_to_market,
)
from smallcap_regime.data.french import PORTFOLIOS_25, parse_portfolios_25, portfolio_field
from smallcap_regime.errors import DataFormatError

EXCERPT = "french_25_portfolios_5x5_sample.csv"
ZIP = "25_Portfolios_5x5_CSV.zip"


@pytest.fixture(scope="module")
def real(realdata_dir) -> pd.DataFrame:
    return parse_portfolios_25((realdata_dir / "french" / ZIP).read_bytes(), ZIP)


def _lines(formats_dir: Path) -> list[bytes]:
    return (formats_dir / EXCERPT).read_bytes().splitlines(keepends=True)


def _line_of(lines: list[bytes], text: bytes) -> int:
    """0-based index of the first line containing ``text``."""
    return next(i for i, line in enumerate(lines) if text in line)


def test_excerpt_reads_the_four_monthly_sections(formats_dir):
    df = parse_portfolios_25((formats_dir / EXCERPT).read_bytes(), EXCERPT)

    assert df.shape == (14, 100)
    assert df.index[0] == pd.Timestamp("1926-07-31") and df.index[-1] == pd.Timestamp("1927-08-31")
    assert df.index.name == "date" and set(df.dtypes) == {np.dtype("float64")}
    assert df.attrs["vintage"] == "202602"
    assert list(portfolio_field(df, "ret").columns) == list(PORTFOLIOS_25)
    # 192607 row of each section: SMALL LoBM = ME1 BM1, BIG HiBM = ME5 BM5
    assert df.loc["1926-07-31", "ret/ME1 BM1"] == pytest.approx(0.058276)  # VW 5.8276 %, not the EW section
    assert df.loc["1926-07-31", "firms/ME1 BM1"] == 7
    assert df.loc["1926-07-31", "size/ME1 BM1"] == pytest.approx(2.71)
    # BE_FYt-1/ME_June t (0.3671), not the BE/ME Dec t-1 section printed above it (0.3023)
    assert df.loc["1926-07-31", "beme/ME1 BM1"] == pytest.approx(0.3671)
    assert df.loc["1927-07-31", "beme/ME1 BM1"] == pytest.approx(0.5675)  # the 1927 formation


def test_real_zip_full_history(real, formats_dir):
    assert real.shape == (1110, 100)
    assert real.index[0] == pd.Timestamp("1926-07-31") and real.index[-1] == pd.Timestamp("2018-12-31")
    assert real.notna().all().all()
    assert real.loc["2018-12-31", "firms/ME5 BM5"] == 22
    assert real.loc["2018-12-31", "beme/ME1 BM5"] == pytest.approx(1.1500)
    pd.testing.assert_frame_equal(real.iloc[:14], parse_portfolios_25((formats_dir / EXCERPT).read_bytes(), "x"),
                                  check_like=False)


def test_formation_values_are_the_july_rows(real):
    formed = formation_book_to_market(real)

    assert formed.index[0] == 1926 and formed.index[-1] == 2018 and len(formed) == 93
    assert formed.loc[1935, "ME1 BM5"] == pytest.approx(23.3969)  # 193507 row
    assert formed.loc[2018, "ME5 BM1"] == pytest.approx(portfolio_field(real, "beme").loc["2018-07-31", "ME5 BM1"])
    assert list(formation_year(pd.DatetimeIndex(["2018-06-30", "2018-07-31", "2019-01-31"]))) == [2017, 2018, 2018]


def test_quintile_book_to_market_by_hand(real):
    btm = size_quintile_book_to_market(real)
    ret, firms, size, beme = (portfolio_field(real, f) for f in ("ret", "firms", "size", "beme"))
    small = [f"ME1 BM{j}" for j in range(1, 6)]
    me0 = firms.loc["2017-07-31", small] * size.loc["2017-07-31", small]  # end-June 2017 market caps
    book = me0 * beme.loc["2017-07-31", small]
    for month in ("2017-07-31", "2018-06-30"):
        gross = (1 + ret.loc["2017-07-31":month, small]).prod()
        assert btm.loc[month, "btm_size_q1"] == pytest.approx(book.sum() / (me0 * gross).sum(), rel=1e-12)
    # July 2018 starts the 2018 formation: only the new formation values and the July return enter
    me0 = firms.loc["2018-07-31", small] * size.loc["2018-07-31", small]
    gross = 1 + ret.loc["2018-07-31", small]
    expected = (me0 * beme.loc["2018-07-31", small]).sum() / (me0 * gross).sum()
    assert btm.loc["2018-07-31", "btm_size_q1"] == pytest.approx(expected, rel=1e-12)
    # small caps carry the higher book-to-market in every month of the real history
    assert (btm["btm_size_q1"] > btm["btm_size_q5"]).mean() > 0.95


def test_book_to_market_is_point_in_time(real):
    """A month's value uses rows up to that month only: cutting the file later changes nothing before the cut."""
    full = size_quintile_book_to_market(real)
    for cut in ("1990-03-31", "2004-07-31", "2011-06-30"):
        part = size_quintile_book_to_market(real.loc[:cut])
        pd.testing.assert_frame_equal(part, full.loc[:cut])


def test_a_missing_return_leaves_the_rest_of_the_formation_year_unknown(real):
    holed = real.copy()
    holed.loc["2016-02-29", "ret/ME1 BM3"] = np.nan
    btm = size_quintile_book_to_market(holed)
    assert btm.loc["2016-01-31":"2016-06-30", "btm_size_q1"].isna().tolist() == [False] + [True] * 5
    assert btm.loc["2016-07-31", "btm_size_q1"] == pytest.approx(size_quintile_book_to_market(real).loc[
        "2016-07-31", "btm_size_q1"])
    assert btm.loc["2016-02-29", "btm_size_q5"] > 0  # other quintiles unaffected


def test_a_file_starting_mid_year_has_no_value_before_its_first_july(real):
    btm = size_quintile_book_to_market(real.loc["1990-01-31":])
    assert btm.loc[:"1990-06-30"].isna().all().all()
    assert btm.loc["1990-07-31":].notna().all().all()


# --- corrupted copies ----------------------------------------------------------------------------------------


def test_missing_beme_june_section(formats_dir, tmp_path):
    lines = _lines(formats_dir)
    title = _line_of(lines, b"BE_FYt-1/ME_June t Calculated")
    lines[title] = lines[title].replace(b"BE_FYt-1/ME_June t", b"BE/ME")
    with pytest.raises(DataFormatError, match=r"^x: 2 monthly value-weighted average BE_FYt-1/ME_June t|no monthly "
                                              r"value-weighted average BE_FYt-1/ME_June t section found"):
        parse_portfolios_25(b"".join(lines), "x")


@pytest.mark.parametrize(("scale", "message"), [
    (100, r"^x: line 151: 592.08 in column 'ME1 BM5' is not a book-to-market ratio \(0 < BE/ME <= 500\)"),
    (20, r"^x: median BE/ME 21.641 is outside the typical 0.05 to 10; wrong units \(percent\?\)"),
])
def test_beme_in_wrong_units_is_refused(formats_dir, scale, message):
    lines = _lines(formats_dir)
    header = _line_of(lines, b"BE_FYt-1/ME_June t Calculated") + 4
    assert lines[header].startswith(b",SMALL LoBM")
    for i in range(header + 1, header + 15):
        cells = lines[i].rstrip(b"\r\n").split(b",")
        lines[i] = b",".join([cells[0], *(b"%.4f" % (scale * float(c)) for c in cells[1:])]) + b"\r\n"
    with pytest.raises(DataFormatError, match=message):
        parse_portfolios_25(b"".join(lines), "x")


def test_negative_firm_count_names_the_line(formats_dir):
    lines = _lines(formats_dir)
    row = _line_of(lines, b"Number of Firms") + 2
    lines[row] = lines[row].replace(b"      7,", b"     -7,", 1)
    with pytest.raises(DataFormatError, match=rf"^x: line {row + 1}: -7 in column 'ME1 BM1' is not a count of firms"):
        parse_portfolios_25(b"".join(lines), "x")


def test_a_portfolio_missing_from_a_section(formats_dir):
    lines = _lines(formats_dir)
    header = _line_of(lines, b"Average Market Cap") + 1
    lines[header] = lines[header].replace(b"BIG HiBM", b"BIG XBM")
    with pytest.raises(DataFormatError, match=r"section lacks portfolio\(s\) ME5 BM5"):
        parse_portfolios_25(b"".join(lines), "x")


def test_sections_covering_different_months(formats_dir):
    lines = _lines(formats_dir)
    last_firm_row = _line_of(lines, b"Number of Firms") + 15
    assert lines[last_firm_row].startswith(b"192708")
    del lines[last_firm_row]
    with pytest.raises(DataFormatError, match=r"the firms section covers 1926-07..1927-07 \(13 months\) but the "
                                              r"returns cover 1926-07..1927-08 \(14 months\)"):
        parse_portfolios_25(b"".join(lines), "x")


def test_not_a_daily_file(formats_dir):
    with pytest.raises(DataFormatError, match="monthly file only"):
        parse_portfolios_25((formats_dir / EXCERPT).read_bytes(), EXCERPT, daily=True)


def test_revisions_between_vintages_are_named(real):
    from smallcap_regime.data.sources import beme_revisions

    assert beme_revisions(None, real) is None and beme_revisions(real, real.copy()) is None
    revised = real.copy()
    revised.loc["2018-07-31":"2018-12-31", "beme/ME3 BM2"] *= 1.02  # the latest formation year restated
    assert beme_revisions(real, revised) == ("BE/ME restated for 6 month(s) 2018-07..2018-12, largest change "
                                             "0.020 log points")
    # a new vintage that only adds months restates nothing
    assert beme_revisions(real.loc[:"2018-06-30"], real) is None
