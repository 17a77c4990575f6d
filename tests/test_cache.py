"""The Parquet cache and its manifest, and FINRA short interest (incremental pulls and hand imports).

SYNTHETIC DATA (FINRA only): no real FINRA short-interest file was available, so the FINRA files below are built
by hand in the layout hypothesised in docs/formats.md, section 6 (pipe-delimited despite `.csv`,
14-column camelCase header, `accountingYearMonthNumber` as YYYYMMDD, `settlementDate` as YYYY-MM-DD, empty flag
fields). Every FINRA number is made up. FRED and French data come from tests/data/realdata (real files).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from smallcap_regime.cli import app, main
from smallcap_regime.data import load_panel, sources
from smallcap_regime.data.cache import MANIFEST, Cache, atomic_write_bytes
from smallcap_regime.data.http import RetryPolicy, make_client
from smallcap_regime.errors import NoDataError

from helpers import finra_file
from loopback import LoopbackServer, point_sources_at

WIDE = {"COLUMNS": "400"}
def finra_path(settlement: date) -> str:
    return f"/equity/otcmarket/biweekly/shrt{settlement:%Y%m%d}.csv"


def finra_hits(server: LoopbackServer) -> dict[str, int]:
    return {path: n for path, n in server.hits.items() if path.startswith("/equity/")}


def state(home: Path, key: str) -> tuple[bytes, dict]:
    cache = Cache(home)
    return cache.path(key).read_bytes(), json.loads((cache.root / MANIFEST).read_text())


def temp_files(home: Path) -> list[Path]:
    return [p for p in Cache(home).root.rglob("*") if p.name.endswith(".tmp")]


@pytest.fixture(scope="module")
def loopback():
    with LoopbackServer() as srv:
        yield srv


@pytest.fixture
def server(loopback, monkeypatch):
    loopback.routes.clear()
    loopback.hits.clear()
    point_sources_at(monkeypatch, loopback.url)
    monkeypatch.setenv("REGIME_HTTP_RETRIES", "0")
    return loopback


# --- atomic writes --------------------------------------------------------------------------------------------------


def test_atomic_write_bytes_failure_leaves_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "manifest.json"
    atomic_write_bytes(target, b'{"old": 1}')

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left on device"):
        atomic_write_bytes(target, b'{"new": 2, "much": "longer content"}')

    assert target.read_bytes() == b'{"old": 1}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]


def test_failed_parquet_write_keeps_the_previous_vintage_and_manifest(home, monkeypatch):
    cache = Cache(home)
    old = pd.DataFrame({"value": [1.0, 2.0]}, index=pd.DatetimeIndex(["2018-01-01", "2018-02-01"], name="date"))
    cache.write("fred/TEST", old, source="fred", url="http://x/old", raw_sha256="a" * 64)
    before = state(home, "fred/TEST")

    def crash_midway(self, path, *args, **kwargs):
        Path(path).write_bytes(b"PAR1 half a parquet file")
        raise OSError("connection to the disk lost")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", crash_midway)
    new = pd.DataFrame({"value": [9.0]}, index=pd.DatetimeIndex(["2019-01-01"], name="date"))
    with pytest.raises(OSError, match="connection to the disk lost"):
        cache.write("fred/TEST", new, source="fred", url="http://x/new", raw_sha256="b" * 64)
    monkeypatch.undo()

    assert state(home, "fred/TEST") == before
    pd.testing.assert_frame_equal(cache.read("fred/TEST"), old, check_freq=False)
    assert cache.manifest()["fred/TEST"].url == "http://x/old"
    assert temp_files(home) == []


def test_read_of_a_missing_key_points_to_data_pull(home):
    with pytest.raises(NoDataError, match=r"^fred/DGS10 is not in the cache at .*; run `regime data pull` first$"):
        Cache(home).read("fred/DGS10")
    with pytest.raises(NoDataError, match=r"no live data in the cache .*run `regime data pull` or use the offline"):
        load_panel(home, "live")


# --- manifest -------------------------------------------------------------------------------------------------------


def test_manifest_records_source_url_time_hash_and_range(home, server, realdata_dir):
    raw_fred = (realdata_dir / "fred" / "UNRATE.csv").read_bytes()
    raw_zip = (realdata_dir / "french" / "F-F_Research_Data_Factors_CSV.zip").read_bytes()
    server.serve("/graph/fredgraph.csv?id=UNRATE", (200, raw_fred))
    server.serve("/ftp/F-F_Research_Data_Factors_CSV.zip", (200, raw_zip))
    jobs = [j for j in sources.plan_pull(["fred", "french"]) if j.key in ("fred/UNRATE", "french/factors_monthly")]
    policy = RetryPolicy.from_env()
    started = datetime.now(UTC).replace(microsecond=0)

    with make_client(policy) as client:
        results = [sources.run_job(job, Cache(home), client, policy) for job in jobs]

    finished = datetime.now(UTC)
    assert all(r.ok for r in results), results
    records = json.loads((Cache(home).root / MANIFEST).read_text())
    assert set(records) == {"fred/UNRATE", "french/factors_monthly"}
    unrate = records["fred/UNRATE"]
    assert set(unrate) == {"key", "source", "url", "fetched_at", "sha256", "first", "last", "rows", "extra", "file"}
    assert (Cache(home).root / unrate["file"]).is_file() and unrate["file"].startswith("fred/UNRATE.")
    assert unrate["key"] == "fred/UNRATE" and unrate["source"] == "fred"
    assert unrate["url"] == f"{server.url}/graph/fredgraph.csv?id=UNRATE"
    fetched_at = datetime.fromisoformat(unrate["fetched_at"])
    assert fetched_at.utcoffset() == timedelta(0)
    assert started <= fetched_at <= finished
    assert unrate["sha256"] == hashlib.sha256(raw_fred).hexdigest()
    assert (unrate["first"], unrate["last"], unrate["rows"]) == ("1948-01-01", "2018-12-01", 852)
    factors = records["french/factors_monthly"]
    assert factors["source"] == "french" and factors["url"].endswith("/ftp/F-F_Research_Data_Factors_CSV.zip")
    assert factors["sha256"] == hashlib.sha256(raw_zip).hexdigest(), "hash of the downloaded zip, not of the CSV"
    assert (factors["first"], factors["last"], factors["rows"]) == ("1926-07-31", "2018-12-31", 1110)
    assert factors["extra"] == {"vintage": "202602"}
    assert Cache(home).read("fred/UNRATE")["value"].loc["1948-01-01"] == 3.4
    assert temp_files(home) == []


# --- FINRA: incremental pulls ---------------------------------------------------------------------------------------


def pull_finra(home: Path, today: date) -> sources.PullResult:
    (result,) = sources.pull(home, ["finra"], today=today)
    return result


def test_finra_pull_is_incremental(home, server):
    # settlement dates from 2017-12-29; FINRA lag 12 days. 2018-01-15 was a Monday holiday (MLK day): its file is
    # dated the Friday before, 2018-01-12.
    server.serve(finra_path(date(2017, 12, 29)), (200, finra_file(date(2017, 12, 29), 4.0)))
    server.serve(finra_path(date(2018, 1, 12)), (200, finra_file(date(2018, 1, 12), 4.5)))

    first = pull_finra(home, today=date(2018, 2, 10))  # dates up to 2018-01-29

    assert first.ok, first.message
    assert (first.rows, first.first, first.last) == (4, "2017-12-29", "2018-01-12")
    assert finra_hits(server) == {finra_path(date(2017, 12, 29)): 1, finra_path(date(2018, 1, 15)): 1,
                                  finra_path(date(2018, 1, 12)): 1}
    entry = Cache(home).manifest()[sources.FINRA_KEY]
    assert entry.extra["fetched_dates"] == ["2017-12-29", "2018-01-15"]
    assert entry.extra["symbols"] == ["IWM", "SPY"]

    # two weeks later: 2018-01-31 and 2018-02-15 are due; only the first is published (02-15 and 02-14 are 404)
    server.serve(finra_path(date(2018, 1, 31)), (200, finra_file(date(2018, 1, 31), 5.0)))
    server.hits.clear()

    second = pull_finra(home, today=date(2018, 2, 27))

    assert second.ok
    assert second.message == ("6 rows 2017-12-29..2018-01-31; 1 dates failed, e.g. 2018-02-15: HTTP 404 (not found) "
                              "after 1 attempt")
    assert finra_hits(server) == {finra_path(date(2018, 1, 31)): 1, finra_path(date(2018, 2, 15)): 1,
                                  finra_path(date(2018, 2, 14)): 1}, "dates already fetched are not requested again"

    # the missing date appears; the next pull asks for it alone
    server.serve(finra_path(date(2018, 2, 15)), (200, finra_file(date(2018, 2, 15), 5.5)))
    server.hits.clear()

    third = pull_finra(home, today=date(2018, 2, 27))

    assert (third.ok, third.rows, third.last) == (True, 8, "2018-02-15")
    assert finra_hits(server) == {finra_path(date(2018, 2, 15)): 1}
    server.hits.clear()

    fourth = pull_finra(home, today=date(2018, 2, 27))

    assert (fourth.ok, fourth.message) == (True, "up to date (8 rows)")
    assert finra_hits(server) == {}
    data = Cache(home).read(sources.FINRA_KEY)
    assert list(data.columns) == ["settlement_date", "symbol", "short_shares", "avg_daily_volume", "days_to_cover"]
    iwm = data[data["symbol"] == "IWM"].set_index("settlement_date")["days_to_cover"]
    assert iwm.to_dict() == {pd.Timestamp("2017-12-29"): 4.0, pd.Timestamp("2018-01-12"): 4.5,
                             pd.Timestamp("2018-01-31"): 5.0, pd.Timestamp("2018-02-15"): 5.5}
    assert set(data["symbol"]) == {"IWM", "SPY"}


def test_finra_pull_after_the_parquet_file_was_deleted_fetches_again(home, server, tmp_path):
    # regression: the job trusted the manifest's fetched dates and crashed the whole pull with NoDataError
    # ("... run `regime data pull` first") when the Parquet file had been removed by hand
    server.serve(finra_path(date(2017, 12, 29)), (200, finra_file(date(2017, 12, 29), 4.0)))
    assert pull_finra(home, today=date(2018, 1, 20)).ok
    Cache(home).path(sources.FINRA_KEY).unlink()
    server.hits.clear()

    again = pull_finra(home, today=date(2018, 1, 20))

    assert (again.ok, again.rows, again.first) == (True, 2, "2017-12-29")
    assert finra_hits(server) == {finra_path(date(2017, 12, 29)): 1}
    Cache(home).path(sources.FINRA_KEY).unlink()
    hand = tmp_path / "shrt20180112.csv"
    hand.write_bytes(finra_file(date(2018, 1, 12), 4.5))
    imported = sources.import_short_interest(home, [hand])
    assert (imported.rows, imported.first, imported.last) == (2, "2018-01-12", "2018-01-12")


def test_finra_short_interest_reaches_the_live_panel_with_its_lag(home, server, realdata_dir):
    server.serve_realdata(realdata_dir)
    for day, iwm in ((date(2018, 10, 15), 6.0), (date(2018, 10, 31), 6.5), (date(2018, 11, 15), 7.0),
                     (date(2018, 11, 30), 7.5), (date(2018, 12, 14), 8.0)):
        server.serve(finra_path(day), (200, finra_file(day, iwm)))
    policy = RetryPolicy.from_env()
    ports = next(j for j in sources.plan_pull(["french"]) if j.key == "french/portfolios_me_monthly")
    with make_client(policy) as client:
        assert sources.run_job(ports, Cache(home), client, policy).ok
    assert pull_finra(home, today=date(2019, 1, 31)).ok

    frame = load_panel(home, "live").frame

    si = frame["si_iwm_days_to_cover"]
    # 12-day lag: 2018-10-31 is known 11-12, 2018-11-30 only on 12-12 -> at 2018-11-30 the 11-15 file is the latest
    # known (published 11-27); at 2018-12-31 the 12-14 file (published 12-26)
    assert si.loc["2018-10-31"] == 6.0
    assert si.loc["2018-11-30"] == 7.0
    assert si.loc["2018-12-31"] == 8.0
    assert si.loc[:"2018-09-30"].isna().all()
    assert frame.loc["2018-12-31", "si_spy_short_shares"] == 20_000_000


# --- FINRA: hand imports and malformed files ------------------------------------------------------------------------


def test_import_short_interest_merges_a_hand_downloaded_file(home, server, tmp_path):
    server.serve(finra_path(date(2017, 12, 29)), (200, finra_file(date(2017, 12, 29), 4.0)))
    server.serve(finra_path(date(2018, 1, 12)), (200, finra_file(date(2018, 1, 12), 4.5)))
    assert pull_finra(home, today=date(2018, 2, 10)).rows == 4
    by_hand = tmp_path / "downloads" / "shrt20180131.csv"
    by_hand.parent.mkdir()
    by_hand.write_bytes(finra_file(date(2018, 1, 31), 5.0))
    revised = tmp_path / "downloads" / "shrt20180112.csv"
    revised.write_bytes(finra_file(date(2018, 1, 12), 4.75))  # FINRA revised the 01-12 figures

    result = CliRunner().invoke(app, ["data", "import-short-interest", str(by_hand), str(revised),
                                      "--home", str(home)], env=WIDE)

    assert result.exit_code == 0, result.output
    assert "imported 2 file(s): 6 rows 2017-12-29..2018-01-31" in result.output
    data = Cache(home).read(sources.FINRA_KEY)
    iwm = data[data["symbol"] == "IWM"].set_index("settlement_date")["days_to_cover"]
    assert iwm.to_dict() == {pd.Timestamp("2017-12-29"): 4.0, pd.Timestamp("2018-01-12"): 4.75,
                             pd.Timestamp("2018-01-31"): 5.0}
    entry = Cache(home).manifest()[sources.FINRA_KEY]
    assert entry.url == f"file://{by_hand.resolve()},{revised.resolve()}"
    assert "2018-01-31" in entry.extra["fetched_dates"]
    assert entry.sha256 == hashlib.sha256(by_hand.read_bytes() + revised.read_bytes()).hexdigest()
    # a later pull does not download the imported date again
    server.hits.clear()
    assert pull_finra(home, today=date(2018, 2, 12)).message == "up to date (6 rows)"
    assert finra_hits(server) == {}


def test_import_into_an_empty_cache(home, tmp_path):
    files = []
    for day, iwm in ((date(2018, 3, 15), 3.0), (date(2018, 3, 29), 3.5)):
        files.append(tmp_path / f"shrt{day:%Y%m%d}.csv")
        files[-1].write_bytes(finra_file(day, iwm))

    result = sources.import_short_interest(home, files)

    assert (result.ok, result.rows, result.first, result.last) == (True, 4, "2018-03-15", "2018-03-29")
    assert Cache(home).manifest()[sources.FINRA_KEY].extra["fetched_dates"] == ["2018-03-15", "2018-03-29"]


MALFORMED = {
    "other_layout": (b"Symbol,Short Interest,Avg Volume,Date\nIWM,110000000,25000000,2018-01-31\n",
                     r"missing columns: symbolCode, currentShortPositionQuantity, averageDailyVolumeQuantity, "
                     r"daysToCoverQuantity, settlementDate; header found: 'Symbol,Short Interest"),
    "short_row": (finra_file(date(2018, 1, 31), 5.0).replace(b"|1.25|600000|2018-01-31\n", b"|2018-01-31\n", 1),
                  r"line 2: 12 fields but the header has 14"),
    "bad_number": (finra_file(date(2018, 1, 31), 5.0).replace(b"|5.00|", b"|n/a|"),
                   r"line 3: 'n/a' in column 'daysToCoverQuantity' is not a number"),
    "html": (b"<html><body>Access denied</body></html>", r"looks like an HTML page"),
}


def _seed_finra(home: Path, tmp_path: Path) -> tuple[bytes, dict]:
    seed = tmp_path / "shrt20171229.csv"
    seed.write_bytes(finra_file(date(2017, 12, 29), 4.0))
    sources.import_short_interest(home, [seed])
    return state(home, sources.FINRA_KEY)


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_file_import_is_a_clear_user_error_and_keeps_the_cache(home, tmp_path, monkeypatch, capsys, case):
    body, message = MALFORMED[case]
    before = _seed_finra(home, tmp_path)
    good = tmp_path / "shrt20180112.csv"
    good.write_bytes(finra_file(date(2018, 1, 12), 4.5))
    bad = tmp_path / "shrt20180131.csv"
    bad.write_bytes(body)
    monkeypatch.setenv("COLUMNS", "400")
    monkeypatch.setattr("sys.argv", ["regime", "data", "import-short-interest", str(good), str(bad),
                                     "--home", str(home)])

    with pytest.raises(SystemExit) as exc:
        main()

    assert exc.value.code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert err.startswith(f"error: {bad}: ")
    assert re.search(message, err), err
    assert "Traceback" not in err
    assert state(home, sources.FINRA_KEY) == before, "nothing is written, not even the good file of the same import"
    assert temp_files(home) == []


def test_malformed_file_in_a_pull_names_the_file_and_keeps_the_cache(home, server, tmp_path):
    before = _seed_finra(home, tmp_path)
    server.serve(finra_path(date(2018, 1, 12)), (200, finra_file(date(2018, 1, 12), 4.5)))
    server.serve(finra_path(date(2018, 1, 31)), (200, MALFORMED["bad_number"][0]))

    result = pull_finra(home, today=date(2018, 2, 14))

    assert not result.ok
    assert result.message == ("shrt20180131.csv: line 3: 'n/a' in column 'daysToCoverQuantity' is not a number")
    assert state(home, sources.FINRA_KEY) == before
    assert temp_files(home) == []


def test_new_vintage_gets_a_new_file_and_the_manifest_always_matches_its_file(home, monkeypatch):
    """Synthetic frames. A crash after the new Parquet is written but before the manifest switches leaves the
    manifest pointing at the old, intact vintage; a completed write removes the old file."""
    import smallcap_regime.data.cache as cache_mod

    cache = Cache(home)
    old = pd.DataFrame({"value": [1.0, 2.0]}, index=pd.DatetimeIndex(["2018-01-01", "2018-02-01"], name="date"))
    new = pd.DataFrame({"value": [1.0, 2.0, 3.0]},
                       index=pd.DatetimeIndex(["2018-01-01", "2018-02-01", "2018-03-01"], name="date"))
    cache.write("fred/TEST", old, source="fred", url="u", raw_sha256="a")
    old_file = cache.path("fred/TEST")

    def crash(path, payload):
        raise OSError("disk full")

    monkeypatch.setattr(cache_mod, "atomic_write_bytes", crash)
    with pytest.raises(OSError, match="disk full"):
        cache.write("fred/TEST", new, source="fred", url="u", raw_sha256="b")
    monkeypatch.undo()
    assert cache.path("fred/TEST") == old_file
    assert cache.manifest()["fred/TEST"].rows == 2
    pd.testing.assert_frame_equal(cache.read("fred/TEST"), old)

    cache.write("fred/TEST", new, source="fred", url="u", raw_sha256="b")
    assert cache.path("fred/TEST") != old_file and not old_file.exists()
    assert [p.name for p in (cache.root / "fred").glob("TEST.*")] == [cache.path("fred/TEST").name]  # orphan gone
    assert cache.manifest()["fred/TEST"].rows == 3
    pd.testing.assert_frame_equal(cache.read("fred/TEST"), new)
