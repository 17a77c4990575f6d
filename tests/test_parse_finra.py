"""FINRA short-interest parser.

SYNTHETIC DATA: no real FINRA file was available, so every file here is built by hand in the layout hypothesised
in docs/formats.md, section 6 (pipe-delimited, 14-column header, `settlementDate` as YYYY-MM-DD,
`accountingYearMonthNumber` as YYYYMMDD, empty flag fields). The numbers are made up.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from smallcap_regime.data.finra import REQUIRED_COLUMNS, parse_short_interest
from smallcap_regime.errors import DataFormatError

HEADER = (
    "accountingYearMonthNumber|symbolCode|issueName|issuerServicesGroupExchangeCode|marketClassCode|"
    "currentShortPositionQuantity|previousShortPositionQuantity|stockSplitFlag|averageDailyVolumeQuantity|"
    "daysToCoverQuantity|revisionFlag|changePercent|changePreviousNumber|settlementDate"
)
# synthetic rows: symbol, issue name, short shares, avg daily volume, days to cover
ROWS = [
    ("SPY", "SPDR S&P 500 ETF TRUST", "60000000", "90000000", "1.00"),
    ("AAPL", "Apple Inc. Common Stock", "45000000", "30000000", "1.50"),
    ("IWM", "ISHARES RUSSELL 2000 ETF", "110000000", "25000000", "4.40"),
]
NAME = "shrt20180112.csv"


def _row(symbol: str, issue: str, short: str, volume: str, cover: str, settlement: str = "2018-01-12") -> str:
    return f"20180112|{symbol}|{issue}|A|ARCA|{short}|55000000||{volume}|{cover}||9.09|5000000|{settlement}"


def _file(rows: list[str], header: str = HEADER, newline: str = "\n") -> bytes:
    return newline.join([header, *rows, ""]).encode()


def _synthetic(tmp_path: Path, content: bytes) -> bytes:
    """Write a synthetic file to tmp_path and read it back, as the cache would hand it over."""
    path = tmp_path / NAME
    path.write_bytes(content)
    return path.read_bytes()


@pytest.fixture
def pipe_file(tmp_path) -> bytes:
    return _synthetic(tmp_path, _file([_row(*row) for row in ROWS]))


def test_pipe_file_keeps_requested_symbols_sorted(pipe_file):
    df = parse_short_interest(pipe_file, NAME, ["SPY", "IWM"])

    assert list(df.columns) == ["settlement_date", "symbol", "short_shares", "avg_daily_volume", "days_to_cover"]
    assert df["settlement_date"].dtype.kind == "M"
    assert str(df["symbol"].dtype) == "str"
    assert (df[["short_shares", "avg_daily_volume", "days_to_cover"]].dtypes == "float64").all()
    assert df["symbol"].tolist() == ["IWM", "SPY"]
    assert (df["settlement_date"] == pd.Timestamp("2018-01-12")).all()
    assert df.loc[0, ["short_shares", "avg_daily_volume", "days_to_cover"]].tolist() == [110e6, 25e6, 4.4]
    assert df.loc[1, "short_shares"] == 60e6
    assert df.index.tolist() == [0, 1]


def test_absent_symbols_are_simply_absent(pipe_file):
    assert parse_short_interest(pipe_file, NAME, ["IWM", "QQQ"])["symbol"].tolist() == ["IWM"]

    empty = parse_short_interest(pipe_file, NAME, ["QQQ"])

    assert empty.empty
    assert list(empty.columns) == ["settlement_date", "symbol", "short_shares", "avg_daily_volume", "days_to_cover"]
    assert empty["settlement_date"].dtype.kind == "M" and empty["days_to_cover"].dtype == "float64"


def test_comma_delimited_copy_with_quoted_issue_name(pipe_file, tmp_path):
    rows = [
        f'20180112,{symbol},"{issue}, Class A",A,ARCA,{short},55000000,,{volume},{cover},,9.09,5000000,2018-01-12'
        for symbol, issue, short, volume, cover in ROWS
    ]
    raw = _synthetic(tmp_path, _file(rows, header=HEADER.replace("|", ","), newline="\r\n"))

    pd.testing.assert_frame_equal(
        parse_short_interest(raw, NAME, ["SPY", "IWM"]), parse_short_interest(pipe_file, NAME, ["SPY", "IWM"])
    )


def test_missing_columns_lists_them_and_the_header_found(tmp_path):
    header = HEADER.replace("daysToCoverQuantity", "daysToCover").replace("settlementDate", "settleDate")
    raw = _synthetic(tmp_path, _file([_row(*ROWS[0])], header=header))

    with pytest.raises(
        DataFormatError,
        match=r"^shrt20180112.csv: missing columns: daysToCoverQuantity, settlementDate; "
        r"header found: 'accountingYearMonthNumber\|symbolCode\|",
    ):
        parse_short_interest(raw, NAME, ["SPY"])


def test_tab_delimited_file_is_rejected(tmp_path):
    raw = _synthetic(tmp_path, _file([], header=HEADER.replace("|", "\t")))

    with pytest.raises(DataFormatError, match=rf"missing columns: {', '.join(REQUIRED_COLUMNS)}; header found"):
        parse_short_interest(raw, NAME, ["SPY"])


def test_settlement_dates_disagree(tmp_path):
    rows = [_row(*ROWS[0]), _row(*ROWS[1]), _row(*ROWS[2], settlement="2018-01-31")]

    with pytest.raises(
        DataFormatError, match=r"settlementDate values disagree: '2018-01-12' \(line 2\) and '2018-01-31' \(line 4\)"
    ):
        parse_short_interest(_synthetic(tmp_path, _file(rows)), NAME, ["SPY"])


def test_settlement_date_not_a_date(tmp_path):
    rows = [_row(*row, settlement="01/12/2018") for row in ROWS]

    with pytest.raises(DataFormatError, match=r"line 2: settlementDate '01/12/2018' is not a date"):
        parse_short_interest(_synthetic(tmp_path, _file(rows)), NAME, ["SPY"])


@pytest.mark.parametrize(
    ("short", "volume", "match"),
    [
        ("60000000", "n/a", r"line 2: 'n/a' in column 'averageDailyVolumeQuantity' is not a number"),
        ("", "90000000", r"line 2: '' in column 'currentShortPositionQuantity' is not a number"),
        ("-5", "90000000", r"line 2: '-5' in column 'currentShortPositionQuantity' is negative"),
    ],
)
def test_bad_quantity_of_requested_symbol(tmp_path, short, volume, match):
    rows = [_row("SPY", "SPDR S&P 500 ETF TRUST", short, volume, "1.00"), _row(*ROWS[2])]

    with pytest.raises(DataFormatError, match=match):
        parse_short_interest(_synthetic(tmp_path, _file(rows)), NAME, ["SPY", "IWM"])


def test_bad_quantity_of_other_symbol_is_ignored(tmp_path):
    rows = [_row("XYZQ", "SOME OTC ISSUER", "", "0", ""), _row(*ROWS[0])]

    df = parse_short_interest(_synthetic(tmp_path, _file(rows)), NAME, ["SPY"])

    assert df["symbol"].tolist() == ["SPY"]


def test_requested_symbol_twice(tmp_path):
    rows = [_row(*ROWS[0]), _row(*ROWS[2]), _row(*ROWS[0])]

    with pytest.raises(DataFormatError, match=r"symbol 'SPY' appears twice \(lines 2 and 4\)"):
        parse_short_interest(_synthetic(tmp_path, _file(rows)), NAME, ["SPY"])


def test_ragged_row(tmp_path):
    rows = [_row(*ROWS[0]), _row(*ROWS[1]) + "|extra"]

    with pytest.raises(DataFormatError, match=r"line 3: 15 fields but the header has 14"):
        parse_short_interest(_synthetic(tmp_path, _file(rows)), NAME, ["SPY"])


def test_header_only(tmp_path):
    with pytest.raises(DataFormatError, match=r"no data rows \(header only\)"):
        parse_short_interest(_synthetic(tmp_path, _file([])), NAME, ["SPY"])


def test_html_and_empty_bodies():
    with pytest.raises(DataFormatError, match=r"^x.csv: not a short-interest file: looks like an HTML page"):
        parse_short_interest(b"<html><body>Access Denied</body></html>", "x.csv", ["SPY"])
    with pytest.raises(DataFormatError, match=r"^x.csv: empty file"):
        parse_short_interest(b"  \n", "x.csv", ["SPY"])
