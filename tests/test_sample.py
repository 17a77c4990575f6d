"""The offline sample (real data shipped inside the arch and linearmodels packages): no network, documented range,
units, and the same publication lag as the live series."""

from __future__ import annotations

import socket

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from smallcap_regime.cli import app
from smallcap_regime.data import load_panel
from smallcap_regime.data.sample import LARGE_PORTFOLIOS, SMALL_PORTFOLIOS
from smallcap_regime.data.status import sample_status


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a socket connection fails the test."""
    attempts = []

    def refuse(self, address, *args, **kwargs):
        attempts.append(address)
        raise OSError(f"network access attempted: {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", lambda address, *a, **k: refuse(None, address))
    for source in ("FRENCH", "FRED", "FINRA"):
        monkeypatch.setenv(f"REGIME_{source}_URL", "http://192.0.2.1")  # TEST-NET-1: never routable
    return attempts


@pytest.fixture(scope="module")
def sample_panel():
    return load_panel(None, "sample")


def test_sample_loads_without_network_and_covers_its_documented_range(home, no_network):
    panel = load_panel(home, "sample")
    frame = panel.frame

    assert no_network == []
    assert panel.source == "sample"
    assert (panel.first, panel.last) == (pd.Timestamp("1949-01-31"), pd.Timestamp("2017-03-31"))
    assert frame.index.equals(pd.date_range("1949-01-31", "2017-03-31", freq="ME", name="date"))
    assert len(frame) == 819
    assert {"small_ret", "large_ret", "mkt_excess_ret", "smb", "hml", "rf", "aaa", "baa", "cpi"} <= set(frame)
    assert frame[["small_ret", "large_ret", "mkt_excess_ret", "rf", "aaa", "baa"]].notna().all().all()
    assert "ends 2017-03" in panel.notes[0]
    assert set(panel.vintages) == {"sample/size_value_portfolios", "sample/ff_factors", "sample/moodys_yields",
                                   "sample/core_cpi"}
    assert all(len(v["sha256"]) == 64 and v["package_version"] for v in panel.vintages.values())
    assert list(home.iterdir()) == [], "loading the sample writes nothing into the home dir"


def test_sample_returns_are_decimals(sample_panel):
    frame = sample_panel.frame

    for column in ("small_ret", "large_ret", "mkt_excess_ret", "smb", "hml"):
        assert frame[column].between(-0.5, 0.5).all(), column
    for column in ("small_ret", "large_ret", "mkt_excess_ret"):
        assert 0.02 < frame[column].abs().mean() < 0.06, column  # a few percent a month, as decimals
    # Ken French's RF is a monthly 1-month T-bill return: 0.00 in the 2009-15 zero-rate months, at most ~1.35 %
    assert frame["rf"].between(0.0, 0.014).all()
    assert 0.0003 < frame["rf"].median() < 0.014
    assert frame.loc["1981-05-31", "rf"] == pytest.approx(0.0115)
    assert frame.loc["1949-01-31", "mkt_excess_ret"] == pytest.approx(0.0023)  # 0.23 % in the file


def test_sample_columns_match_their_documented_sources(sample_panel):
    from linearmodels.datasets import french

    size_value = french.load().set_index("dates")
    size_value.index = size_value.index + pd.offsets.MonthEnd(0)
    size_value = size_value.loc[sample_panel.frame.index]
    frame = sample_panel.frame

    # the legs are the documented equal mixes of the smallest- and largest-quintile portfolios
    np.testing.assert_allclose(frame["small_ret"], size_value[list(SMALL_PORTFOLIOS)].mean(axis=1))
    np.testing.assert_allclose(frame["large_ret"], size_value[list(LARGE_PORTFOLIOS)].mean(axis=1))
    # the factors (arch.data.frenchdata, percent / 100) agree with linearmodels' copy (already decimals)
    assert (frame["rf"] - size_value["RF"]).abs().max() < 1e-12
    assert (frame["mkt_excess_ret"] - size_value["MktRF"]).abs().max() < 0.001
    assert (frame["smb"] - size_value["SMB"]).abs().mean() < 0.001
    assert (frame["hml"] - size_value["HML"]).abs().mean() < 0.001


def test_sample_small_leg_tracks_the_real_french_small_portfolio(sample_panel, realdata_dir):
    from smallcap_regime.data.french import parse_portfolios_me

    real = parse_portfolios_me((realdata_dir / "french" / "Portfolios_Formed_on_ME_CSV.zip").read_bytes(), "real")
    both = pd.DataFrame({"sample": sample_panel.frame["small_ret"], "real": real["Lo 30"]}).dropna()

    assert len(both) == 819
    assert both.corr().iloc[0, 1] > 0.9, "same units (decimals) and the same market history"
    assert abs(both["sample"].mean() - both["real"].mean()) < 0.005


def test_sample_yields_are_percent_with_the_one_month_publication_lag(sample_panel):
    from arch.data import default

    moodys = default.load()
    moodys.index = pd.to_datetime(moodys.index)
    frame = sample_panel.frame

    assert frame["aaa"].between(2, 16).all() and frame["baa"].between(3, 18).all()
    assert (frame["baa"] > frame["aaa"]).all()
    # at 1949-01-31 only December 1948 has been published
    assert frame.loc["1949-01-31", "aaa"] == moodys.loc["1948-12-01", "AAA"] == 2.79
    assert moodys.loc["1949-01-01", "AAA"] != 2.79
    assert frame.loc["1949-01-31", "baa"] == moodys.loc["1948-12-01", "BAA"]
    # and everywhere: the value at month end t is the monthly average of the month before t
    previous_month = (frame.index - pd.offsets.MonthBegin(1)) - pd.offsets.MonthBegin(1)
    np.testing.assert_array_equal(frame["aaa"].to_numpy(), moodys["AAA"].reindex(previous_month).to_numpy())
    np.testing.assert_array_equal(frame["baa"].to_numpy(), moodys["BAA"].reindex(previous_month).to_numpy())


def test_sample_cpi_starts_after_its_first_publication(sample_panel):
    from arch.data import core_cpi

    cpi = core_cpi.load()
    cpi.index = pd.to_datetime(cpi.index)
    frame = sample_panel.frame

    assert frame.loc[:"1957-01-31", "cpi"].isna().all()
    assert frame.loc["1957-02-28", "cpi"] == cpi.loc["1957-01-01", "CPILFESL"]
    assert frame.loc["2017-03-31", "cpi"] == cpi.loc["2017-02-01", "CPILFESL"]


def test_status_with_an_empty_home_shows_the_offline_sample(home, no_network):
    result = CliRunner().invoke(app, ["data", "status", "--home", str(home)], env={"COLUMNS": "300"})

    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert f"No live data in {home / 'data'} yet." in text
    assert "Using the offline sample" in text and "it ends 2017-03 - run `regime data pull` for live data" in text
    rows = {cells[1].split(" [")[0]: cells for cells in
            ([c.strip() for c in line.strip().strip("│").split("│")] for line in result.stdout.splitlines()
             if line.startswith("│"))}
    assert set(rows) == {"size_value_portfolios", "ff_factors", "moodys_yields", "core_cpi"}
    assert rows["size_value_portfolios"][:5] == ["sample (offline)",
                                                 "size_value_portfolios [linearmodels.datasets.french/french.csv.bz2]",
                                                 "1949-01-31", "2017-03-31", "819"]
    assert no_network == []


def test_sample_status_frame():
    status = sample_status()

    assert list(status.columns) == ["source", "series", "first", "last", "rows", "fetched_at", "stale"]
    by_table = status.set_index(status["series"].str.split(" ").str[0])
    assert by_table.loc["size_value_portfolios", "last"] == "2017-03-31"
    assert by_table.loc["moodys_yields", "first"] == "1919-01-01"
    assert by_table.loc["ff_factors", ["first", "last"]].tolist() == ["1926-07-31", "2018-11-30"]
    assert status["fetched_at"].str.startswith("package ").all()
