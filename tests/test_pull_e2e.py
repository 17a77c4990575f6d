"""End to end on real history: `regime data pull` -> `regime data status` -> `load_panel(home, "live")`.

A loopback server serves tests/data/realdata (full real files, everything ends 2018-12) in the live sites' URL
layout; series it lacks (DGS1, DGS3MO, DFF, MMMFFAQ027S and all FINRA files) get HTTP 404 as from the real sites.
The pull runs once per module through the CLI; the tests below inspect the result.

The pull's clock is frozen at 2019-01-31 (only inside `sources`, where it bounds the FINRA settlement dates), so
the run tries the same 26 FINRA dates whenever the suite runs instead of one more pair every month.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from smallcap_regime.cli import app
from smallcap_regime.data import load_panel, sources
from smallcap_regime.data.cache import Cache, sha256_hex
from smallcap_regime.data.catalog import fred_specs
from smallcap_regime.data.status import cache_status

from helpers import make_zip
from loopback import LoopbackServer, point_sources_at

pytestmark = pytest.mark.slow  # the whole real history pulled through the download code

WIDE = {"COLUMNS": "300"}
MISSING_ON_SERVER = {"fred/DGS1", "fred/DGS3MO", "fred/DFF", "fred/MMMFFAQ027S", "finra/short_interest"}
ALL_KEYS = [*sources.FRENCH_DATASETS, *(f"fred/{s.series_id}" for s in fred_specs()), sources.FINRA_KEY]
CANONICAL = {
    "small_ret", "large_ret", "mkt_excess_ret", "smb", "hml", "rf", "small_rvar", "large_rvar", "n_days",
    "yield_10y", "yield_2y", "yield_1y", "yield_3m", "fed_funds", "baa", "aaa", "baa_10y_spread", "hy_oas",
    "vix", "unrate", "umcsent", "usd_broad", "nfci", "cpi", "btm_size_q1", "btm_size_q5",
}


class FrozenDate(date):
    @classmethod
    def today(cls) -> date:
        return date(2019, 1, 31)


def table_rows(output: str) -> list[list[str]]:
    """Cells of the body rows of a Rich table printed by the CLI."""
    return [[cell.strip() for cell in line.strip().strip("│").split("│")]
            for line in output.splitlines() if line.startswith("│")]


def read_fred(realdata: Path, series_id: str) -> pd.Series:
    """The real file read independently of the project's parser (empty field = missing)."""
    frame = pd.read_csv(realdata / "fred" / f"{series_id}.csv", parse_dates=["observation_date"])
    return frame.set_index("observation_date")[series_id].dropna()


@pytest.fixture(scope="module")
def pulled(tmp_path_factory, realdata_dir):
    """Run `regime data pull` (all sources) once into a fresh home; yields (home, CLI result, server hits)."""
    home = tmp_path_factory.mktemp("e2e") / "home"
    with pytest.MonkeyPatch.context() as mp, LoopbackServer() as server:
        server.serve_realdata(realdata_dir)
        point_sources_at(mp, server.url)
        mp.setattr(sources, "date", FrozenDate)
        result = CliRunner().invoke(app, ["data", "pull", "--home", str(home)], env=WIDE)
        yield home, result, dict(server.hits)


def test_pull_reports_missing_series_as_failed_and_exits_1(pulled):
    home, result, hits = pulled

    assert result.exit_code == 1, result.output
    rows = {row[0]: row[1:] for row in table_rows(result.stdout)}
    assert list(rows) == ALL_KEYS
    assert {key for key, (status, _) in rows.items() if status == "FAILED"} == MISSING_ON_SERVER
    for key in MISSING_ON_SERVER - {sources.FINRA_KEY}:
        assert rows[key][1].endswith(f"id={key.split('/')[1]}: HTTP 404 (not found) after 1 attempt")
    assert "no short-interest file fetched (26 dates tried; 2017-12-29: HTTP 404" in rows[sources.FINRA_KEY][1]
    assert rows["french/portfolios_me_monthly"] == ["ok", "1110 rows 1926-07-31..2018-12-31"]
    assert rows[sources.PORTFOLIOS_25_KEY] == ["ok", "1110 rows 1926-07-31..2018-12-31"]
    assert f"{len(MISSING_ON_SERVER)} of {len(ALL_KEYS)} datasets failed" in result.stderr
    # 404s are final (one hit per missing FRED id); each FINRA date is tried, then its holiday fallback once
    assert all(hits[f"/graph/fredgraph.csv?id={key.split('/')[1]}"] == 1 for key in MISSING_ON_SERVER if "fred" in key)
    finra_hits = {path: n for path, n in hits.items() if path.startswith("/equity/otcmarket/biweekly/shrt")}
    assert len(finra_hits) == 2 * 26 and set(finra_hits.values()) == {1}
    assert "/equity/otcmarket/biweekly/shrt20171229.csv" in finra_hits


def test_cache_holds_the_whole_real_history(pulled, realdata_dir):
    home, _, _ = pulled
    cache = Cache(home)
    manifest = cache.manifest()

    assert set(manifest) == set(ALL_KEYS) - MISSING_ON_SERVER
    ports = manifest["french/portfolios_me_monthly"]
    assert (ports.first, ports.last, ports.rows) == ("1926-07-31", "2018-12-31", 1110)
    assert ports.extra["vintage"] == "202602"
    assert ports.sha256 == sha256_hex((realdata_dir / "french" / "Portfolios_Formed_on_ME_CSV.zip").read_bytes())
    frame = cache.read("french/portfolios_me_monthly")
    assert len(frame) == 1110 and frame.index[0] == pd.Timestamp("1926-07-31")
    assert frame.loc["1926-07-31", "Lo 30"] == pytest.approx(0.0006)  # 0.06 % in the 202602 vintage

    unrate = manifest["fred/UNRATE"]
    assert (unrate.first, unrate.last) == ("1948-01-01", "2018-12-01")
    dgs10 = cache.read("fred/DGS10")["value"]
    expected = read_fred(realdata_dir, "DGS10")
    assert manifest["fred/DGS10"].rows == len(expected) == len(dgs10)
    np.testing.assert_array_equal(dgs10.to_numpy(), expected.to_numpy())
    assert manifest["fred/DGS10"].sha256 == sha256_hex((realdata_dir / "fred" / "DGS10.csv").read_bytes())
    for key, entry in manifest.items():
        assert entry.url.startswith("http://127.0.0.1:"), key
        assert entry.fetched_at.endswith("+00:00"), key
        assert cache.path(key).is_file(), key


def test_status_lists_the_cache_and_flags_2018_data_as_stale(pulled):
    home, _, _ = pulled

    result = CliRunner().invoke(app, ["data", "status", "--home", str(home)], env=WIDE)

    assert result.exit_code == 0, result.output
    assert "No live data" not in result.output
    rows = {f"{row[0]}/{row[1]}": row[2:] for row in table_rows(result.stdout)}
    assert set(rows) == set(ALL_KEYS) - MISSING_ON_SERVER
    assert rows["fred/UNRATE"][:3] == ["1948-01-01", "2018-12-01", "852"]
    assert rows["french/portfolios_me_monthly"][:3] == ["1926-07-31", "2018-12-31", "1110"]
    assert rows[sources.PORTFOLIOS_25_KEY][:3] == ["1926-07-31", "2018-12-31", "1110"]
    assert {row[-1] for row in rows.values()} == {"yes"}
    # the staleness rule itself: fresh right after the data end, stale long after it
    assert not cache_status(home, today=date(2019, 1, 10)).set_index("series").loc["DGS10", "stale"]
    assert cache_status(home, today=date(2019, 6, 1))["stale"].all()


def test_live_panel_from_real_history(pulled, realdata_dir):
    home, _, _ = pulled

    panel = load_panel(home, "live")
    frame = panel.frame

    assert panel.source == "live"
    assert (frame.index[0], frame.index[-1], len(frame)) == (pd.Timestamp("1926-07-31"), pd.Timestamp("2018-12-31"),
                                                              1110)
    assert frame.index.equals(pd.date_range("1926-07-31", "2018-12-31", freq="ME", name="date"))
    assert set(frame.columns) == CANONICAL, "series never pulled (mmf_assets, short interest) are simply absent"
    assert (frame.dtypes == "float64").all()
    assert set(panel.vintages) == set(ALL_KEYS) - MISSING_ON_SERVER

    # publication lags: DGS10 (1 day) -> the 2018-11-29 close is the last one known on Friday 2018-11-30
    dgs10 = read_fred(realdata_dir, "DGS10")
    assert frame.loc["2018-11-30", "yield_10y"] == dgs10.loc["2018-11-29"] == 3.03
    assert dgs10.loc["2018-11-30"] != 3.03
    # UNRATE (1 month): at 2018-12-31 the November figure is known, the December one is not
    unrate = read_fred(realdata_dir, "UNRATE")
    assert frame.loc["2018-12-31", "unrate"] == unrate.loc["2018-11-01"] == 3.8
    assert unrate.loc["2018-12-01"] == 3.9
    assert frame.loc["1948-01-31", "unrate"] != frame.loc["1948-01-31", "unrate"]  # NaN: January not yet published
    assert frame.loc["1948-02-29", "unrate"] == unrate.loc["1948-01-01"]
    # priority merge: DGS10 starts 1999-01-04, so 1998-12-31 comes from GS10 (November average)
    gs10 = read_fred(realdata_dir, "GS10")
    assert frame.loc["1998-12-31", "yield_10y"] == gs10.loc["1998-11-01"]
    assert frame.loc["1959-01-31":"1959-01-31", "yield_10y"].isna().all()
    assert frame.loc["1959-02-28", "yield_10y"] == gs10.loc["1959-01-01"]
    # VIX has lag 0: the 2018-12-31 close is known at 2018-12-31
    assert frame.loc["2018-12-31", "vix"] == read_fred(realdata_dir, "VIXCLS").loc["2018-12-31"]
    # series that start late are NaN before they exist, not 0
    assert frame.loc[:"1998-12-31", "hy_oas"].isna().all() and frame.loc["1999-01-31", "hy_oas"] > 0
    assert frame.loc[:"2005-12-31", "usd_broad"].isna().all()

    # plausible units: decimal returns, percent yields, index levels
    assert frame["small_ret"].between(-0.5, 1.5).all() and frame["large_ret"].between(-0.5, 0.5).all()
    assert frame["small_ret"].abs().median() < 0.06
    assert frame["rf"].between(-0.001, 0.02).all()
    assert frame["small_rvar"].dropna().between(0, 0.5).all() and frame["n_days"].max() <= 27
    for column, low, high in [("yield_10y", 0.5, 16), ("yield_3m", 0, 17), ("fed_funds", 0, 20), ("unrate", 2, 26),
                              ("baa", 2, 18), ("aaa", 2, 16), ("vix", 8, 90), ("nfci", -2, 6), ("cpi", 20, 260)]:
        values = frame[column].dropna()
        assert len(values) > 200, column
        assert values.between(low, high).all(), (column, values.min(), values.max())
    yields = frame[["baa", "aaa"]].dropna()
    # 720 monthly observations 1959-01..2018-12; the December 2018 one is published after the panel ends
    assert len(yields) == 719 and (yields["baa"] > yields["aaa"]).all()
    assert frame.loc["2018-12-31", "cpi"] == read_fred(realdata_dir, "CPIAUCSL").loc["2018-11-01"]
    # realised variance of daily decimal returns: annualised large-cap vol around 11 % typically, and the three
    # most volatile months of the century are the crashes of October 1987, 2008 and 1929
    vol = np.sqrt(12 * frame["large_rvar"].dropna())
    assert len(vol) == 1110 and vol.between(0.02, 1.5).all() and 0.08 < vol.median() < 0.16
    assert {d.strftime("%Y-%m") for d in vol.nlargest(3).index} == {"1987-10", "2008-10", "1929-10"}
    # book-to-market of the size quintiles from 25_Portfolios_5x5: from the first formation (1926-07), ratios,
    # small caps the cheaper in nearly every month
    btm = frame[["btm_size_q1", "btm_size_q5"]]
    assert btm.notna().all().all() and (btm > 0.1).all().all() and (btm < 30).all().all()
    assert (btm["btm_size_q1"] > btm["btm_size_q5"]).mean() > 0.95


def test_the_25_portfolios_file_is_validated_cached_and_restatements_reported(pulled, realdata_dir, monkeypatch,
                                                                             tmp_path):
    home = tmp_path / "home"
    shutil.copytree(pulled[0], home)
    key = sources.PORTFOLIOS_25_KEY
    entry = Cache(home).manifest()[key]
    assert entry.extra["vintage"] == "202602"
    assert entry.sha256 == sha256_hex((realdata_dir / "french" / "25_Portfolios_5x5_CSV.zip").read_bytes())
    # the next vintage restates the latest formation year's BE/ME (2018-07..2018-12): the pull says so
    text = zipfile.ZipFile(realdata_dir / "french" / "25_Portfolios_5x5_CSV.zip").read("25_Portfolios_5x5.csv")
    lines = text.split(b"\r\n")
    header = next(i for i, line in enumerate(lines) if b"BE_FYt-1/ME_June t Calculated" in line) + 4
    last = next(i for i in range(header + 1, len(lines)) if not lines[i].strip()) - 1
    assert lines[last].startswith(b"201812,")
    lines[last] = lines[last].replace(b"0.1248", b"0.1261", 1)  # ME1 BM1, 1 % higher
    with LoopbackServer() as server:
        server.serve("/ftp/25_Portfolios_5x5_CSV.zip", (200, make_zip({"25_Portfolios_5x5.csv": b"\r\n".join(lines)})))
        point_sources_at(monkeypatch, server.url)
        [result] = [r for r in sources.pull(home, ["french"]) if r.key == key]

    assert result.ok, result.message
    assert result.message == ("1110 rows 1926-07-31..2018-12-31; BE/ME restated for 1 month(s) 2018-12..2018-12, "
                              "largest change 0.010 log points")
    assert Cache(home).read(key).loc["2018-12-31", "beme/ME1 BM1"] == 0.1261


def test_pulling_again_is_idempotent_for_unchanged_files(pulled, realdata_dir, monkeypatch, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(pulled[0], home)  # leave the module's cache alone
    before = Cache(home).manifest()
    with LoopbackServer() as server:
        server.serve_realdata(realdata_dir)
        point_sources_at(monkeypatch, server.url)

        results = sources.pull(home, ["fred"])

    after = Cache(home).manifest()
    assert {r.key for r in results if not r.ok} == {k for k in MISSING_ON_SERVER if k.startswith("fred/")}
    for key in before:
        if key.startswith("fred/"):
            assert (after[key].sha256, after[key].rows, after[key].last) == (
                before[key].sha256, before[key].rows, before[key].last), key
    assert json.loads((Cache(home).root / "manifest.json").read_text()).keys() == before.keys()


def test_features_from_1926_are_missing_not_zero_before_their_series_start(pulled):
    """The whole real history (1926-07 on): every feature is NaN until all of its inputs have started."""
    from smallcap_regime.features.build import build_features, load_feature_spec
    from smallcap_regime.features.catalogue import source_series

    frame = load_panel(pulled[0], "live").frame
    spec = load_feature_spec("default").with_families("valuation")
    features = build_features(frame, spec)

    assert features.index[0] == pd.Timestamp("1926-07-31") and np.isfinite(features.to_numpy()[
        ~np.isnan(features.to_numpy())]).all()
    for feature in spec.features:
        sources = source_series(feature)
        if not sources:
            continue
        starts = [frame[s].first_valid_index() if s in frame else None for s in sources]
        if None in starts:  # never pulled (short interest, money funds): missing throughout
            assert features[feature.name].isna().all(), feature.name
            continue
        assert features.loc[:max(starts) - pd.Timedelta(days=1), feature.name].isna().all(), feature.name
    assert features["yield_10y_chg_1m_bp"].first_valid_index() == pd.Timestamp("1959-03-31")  # GS10 from 1959-01
    assert features["smb_btm_spread_log"].first_valid_index() == pd.Timestamp("1926-07-31")
    assert features["smb_btm_spread_z_120m_std"].first_valid_index() == pd.Timestamp("1936-06-30")


def test_features_command_lists_the_held_valuation_family_and_the_reading(pulled):
    from smallcap_regime.features.valuation import valuation_reading

    home = pulled[0]
    result = CliRunner().invoke(app, ["features", "--home", str(home)], env=WIDE)

    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert "valuation: off (held back, not model input): held back from the model until the adoption rule" in flat
    reading = valuation_reading(load_panel(home, "live").frame)
    assert reading.as_of == pd.Timestamp("2018-12-31")
    assert f"valuation at 2018-12-31: {reading.sentence()}" in flat
    assert reading.sentence().startswith("small caps are 0.21 log points cheaper relative to large caps than their "
                                         "10-year average")
