"""Downloads through the real code path (`sources.pull` / `run_job` -> `http.fetch_bytes` -> parsers -> `Cache`).

A loopback HTTP server stands in for the Ken French and FRED sites and serves the real files from
tests/data/realdata (via the `realdata_dir` fixture) with scripted faults: HTTP 500, slow responses, an HTML page
with status 200, a truncated zip. Whatever goes wrong, a failed dataset is reported with the URL or file name and
the reason, the cache keeps its previous vintage byte for byte, and the other datasets still update.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smallcap_regime.cli import app, main
from smallcap_regime.data import sources
from smallcap_regime.data.cache import MANIFEST, Cache
from smallcap_regime.data.http import RetryPolicy, make_client

from loopback import LoopbackServer, point_sources_at, pull_table

DGS10 = "/graph/fredgraph.csv?id=DGS10"
GS10 = "/graph/fredgraph.csv?id=GS10"
PORTFOLIOS = "/ftp/Portfolios_Formed_on_ME_CSV.zip"
FACTORS = "/ftp/F-F_Research_Data_Factors_CSV.zip"
HTML_PAGE = (b"<!DOCTYPE html>\n<html><head><title>Service maintenance</title></head>"
             b"<body><p>We'll be back soon.</p></body></html>\n")
WIDE = {"COLUMNS": "300"}  # keep Rich from wrapping table cells and messages


def serve(server: LoopbackServer, path: str, *responses: tuple) -> None:
    """(Re)script a path and restart its hit count, so response lists start from their first entry."""
    server.serve(path, *responses)
    server.hits.pop(path, None)


def fred_until(raw: bytes, last_date: str) -> bytes:
    """An older vintage of a fredgraph CSV: the real file cut after ``last_date`` (ISO dates sort as text)."""
    lines = raw.decode().splitlines(keepends=True)
    return "".join([lines[0], *(line for line in lines[1:] if line[:10] <= last_date)]).encode()


def job(key: str) -> sources.Job:
    source = key.split("/")[0]
    return next(j for j in sources.plan_pull([source]) if j.key == key)


def run(home: Path, key: str) -> sources.PullResult:
    """Run one dataset's job exactly as `pull` does (policy from the environment)."""
    policy = RetryPolicy.from_env()
    with make_client(policy) as client:
        return sources.run_job(job(key), Cache(home), client, policy)


def snapshot(home: Path, key: str) -> dict:
    """Everything a failed pull must leave alone: the dataset's bytes and mtime, its manifest entry, its files."""
    cache = Cache(home)
    path = cache.path(key)
    manifest = json.loads((cache.root / MANIFEST).read_text())
    return {
        "parquet": path.read_bytes(),
        "mtime_ns": path.stat().st_mtime_ns,
        "entry": manifest[key],
        "files": sorted(str(p.relative_to(cache.root)) for p in cache.root.glob(f"{key}.*")),
    }


def leftovers(home: Path) -> list[Path]:
    return [p for p in Cache(home).root.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".")]


@pytest.fixture(scope="module")
def loopback():
    # one server per module: shutting one down takes ~0.5 s (serve_forever's poll interval)
    with LoopbackServer() as srv:
        yield srv


@pytest.fixture
def server(loopback, monkeypatch, realdata_dir):
    """The loopback server serving realdata, with routes and hit counts reset, and every source aimed at it."""
    loopback.routes.clear()
    loopback.hits.clear()
    loopback.serve_realdata(realdata_dir)
    point_sources_at(monkeypatch, loopback.url)
    monkeypatch.setenv("REGIME_HTTP_RETRIES", "1")
    return loopback


# --- retries and timeouts -------------------------------------------------------------------------------------------


def test_http_500_then_success_is_retried(home, server, realdata_dir, monkeypatch):
    monkeypatch.setenv("REGIME_HTTP_RETRIES", "2")
    real = (realdata_dir / "fred" / "DGS10.csv").read_bytes()
    serve(server, DGS10, (500, b"Internal Server Error"), (200, real))

    result = run(home, "fred/DGS10")

    assert result.ok, result.message
    assert server.hits[DGS10] == 2
    assert (result.rows, result.first, result.last) == (5003, "1999-01-04", "2018-12-31")
    assert Cache(home).manifest()["fred/DGS10"].sha256 == sources.sha256_hex(real)


def test_http_500_on_every_attempt_fails_after_the_retries(home, server):
    serve(server, DGS10, (503, b"Service Unavailable"))

    result = run(home, "fred/DGS10")

    assert not result.ok
    assert server.hits[DGS10] == 2  # REGIME_HTTP_RETRIES=1: one retry
    assert result.message == f"{server.url}{DGS10}: HTTP 503 after 2 attempts"
    assert not Cache(home).has("fred/DGS10")


def test_404_is_final_and_not_retried(home, server):
    result = run(home, "fred/DGS3MO")  # not in realdata: the server answers 404 like FRED for an unknown id

    assert not result.ok
    assert server.hits["/graph/fredgraph.csv?id=DGS3MO"] == 1
    assert result.message.endswith("id=DGS3MO: HTTP 404 (not found) after 1 attempt")


def test_timeout_fails_naming_the_url(home, server, monkeypatch, realdata_dir):
    monkeypatch.setenv("REGIME_HTTP_TIMEOUT", "0.3")
    serve(server, DGS10, (200, (realdata_dir / "fred" / "DGS10.csv").read_bytes(), 1.5))

    started = time.monotonic()
    result = run(home, "fred/DGS10")
    elapsed = time.monotonic() - started

    assert not result.ok
    assert f"{server.url}{DGS10}" in result.message
    assert "timed out after 0.3 s after 2 attempts" in result.message
    assert server.hits[DGS10] == 2
    assert elapsed < 2.5, "the client must give up after each 0.3 s timeout, not wait 2 x 1.5 s for the responses"


def test_a_slow_first_response_is_retried(home, server, monkeypatch, realdata_dir):
    monkeypatch.setenv("REGIME_HTTP_TIMEOUT", "0.3")
    real = (realdata_dir / "fred" / "DGS10.csv").read_bytes()
    serve(server, DGS10, (200, real, 1.0), (200, real))

    result = run(home, "fred/DGS10")

    assert result.ok, result.message
    assert server.hits[DGS10] == 2
    assert result.rows == 5003


# --- bad bodies -----------------------------------------------------------------------------------------------------


def test_html_page_with_status_200_is_rejected(home, server):
    serve(server, DGS10, (200, HTML_PAGE))
    serve(server, PORTFOLIOS, (200, HTML_PAGE))

    fred_result = run(home, "fred/DGS10")
    french_result = run(home, "french/portfolios_me_monthly")

    assert not fred_result.ok and not french_result.ok
    assert fred_result.message == "FRED DGS10: not a CSV: looks like an HTML page"
    assert french_result.message == "Portfolios_Formed_on_ME_CSV.zip: not a zip or CSV: looks like an HTML page"
    assert server.hits[DGS10] == 1, "a 200 response is not retried, even when its body is wrong"


@pytest.mark.parametrize("cut", ["half", "no_central_directory"])
def test_truncated_zip_names_the_file(home, server, realdata_dir, cut):
    real = (realdata_dir / "french" / "Portfolios_Formed_on_ME_CSV.zip").read_bytes()
    body = real[: len(real) // 2] if cut == "half" else real[: real.rfind(b"PK\x01\x02")]
    serve(server, PORTFOLIOS, (200, body))

    result = run(home, "french/portfolios_me_monthly")

    assert not result.ok
    assert result.message.startswith("Portfolios_Formed_on_ME_CSV.zip: truncated or corrupt zip")


# --- the cache keeps the previous vintage ---------------------------------------------------------------------------


def _wrong_units(realdata_dir: Path) -> bytes:
    """DGS10 in basis points instead of percent: every value x100, outside the catalogue range [-5, 30]."""
    lines = (realdata_dir / "fred" / "DGS10.csv").read_text().splitlines()
    scaled = [lines[0]] + [f"{d},{float(v) * 100:g}" if v else f"{d}," for d, v in (ln.split(",") for ln in lines[1:])]
    return ("\n".join(scaled) + "\n").encode()


FAILURES = {
    # case: (cache key, served path, responses given the real bytes, expected message regex)
    "http_500": ("fred/DGS10", DGS10, lambda real, rd: [(500, b"oops")], r"id=DGS10: HTTP 500 after 2 attempts"),
    "timeout": ("fred/DGS10", DGS10, lambda real, rd: [(200, real, 1.0)], r"id=DGS10: timed out after 0\.3 s"),
    "html": ("fred/DGS10", DGS10, lambda real, rd: [(200, HTML_PAGE)], r"^FRED DGS10: .*HTML page"),
    "wrong_units": ("fred/DGS10", DGS10, lambda real, rd: [(200, _wrong_units(rd))],
                    r"^FRED DGS10: \d+ value\(s\) outside the expected range; first 1999-01-04 = 469.*wrong units\?"),
    "truncated_zip": ("french/portfolios_me_monthly", PORTFOLIOS, lambda real, rd: [(200, real[: len(real) // 3])],
                      r"^Portfolios_Formed_on_ME_CSV\.zip: truncated or corrupt zip"),
    "not_found": ("french/portfolios_me_monthly", PORTFOLIOS, lambda real, rd: [(404, b"<html>gone</html>")],
                  r"Portfolios_Formed_on_ME_CSV\.zip: HTTP 404 \(not found\) after 1 attempt"),
}


@pytest.mark.parametrize("case", list(FAILURES))
def test_failed_pull_keeps_the_previous_vintage(home, server, realdata_dir, monkeypatch, case):
    monkeypatch.setenv("REGIME_HTTP_TIMEOUT", "0.3")
    key, path, responses, message = FAILURES[case]
    assert run(home, key).ok
    before = snapshot(home, key)
    frame_before = Cache(home).read(key)
    real = server.routes[path][0][1]
    serve(server, path, *responses(real, realdata_dir))

    result = run(home, key)

    assert not result.ok
    assert result.key == key
    assert re.search(message, result.message), result.message
    after = snapshot(home, key)
    assert after == before
    assert after["entry"]["sha256"] == sources.sha256_hex(real)
    assert Cache(home).read(key).equals(frame_before)
    assert leftovers(home) == []


def test_one_failing_dataset_does_not_stop_the_others(home, server, realdata_dir):
    real_gs10 = (realdata_dir / "fred" / "GS10.csv").read_bytes()
    serve(server, GS10, (200, fred_until(real_gs10, "2017-12-31")))  # an older vintage first
    first = {r.key: r for r in sources.pull(home, ["fred"])}
    assert first["fred/GS10"].last == "2017-12-01" and first["fred/DGS10"].ok
    dgs10_before = snapshot(home, "fred/DGS10")
    serve(server, GS10, (200, real_gs10))
    serve(server, DGS10, (200, HTML_PAGE))
    seen = []

    results = sources.pull(home, ["fred"], on_result=seen.append)

    by_key = {r.key: r for r in results}
    assert [r.key for r in results] == [f"fred/{spec.series_id}" for spec in sources.fred_specs()]
    assert seen == results
    failed = sorted(k for k, r in by_key.items() if not r.ok)
    assert failed == ["fred/DFF", "fred/DGS1", "fred/DGS10", "fred/DGS3MO", "fred/MMMFFAQ027S"]
    assert "HTML" in by_key["fred/DGS10"].message
    # the series after the failure in the plan were still pulled, and the newer GS10 vintage replaced the old one
    assert by_key["fred/GS10"].ok and by_key["fred/GS10"].last == "2018-12-01"
    manifest = Cache(home).manifest()
    assert manifest["fred/GS10"].last == "2018-12-01"
    assert manifest["fred/GS10"].sha256 == sources.sha256_hex(real_gs10)
    assert manifest["fred/CPIAUCSL"].last == "2018-12-01"
    assert snapshot(home, "fred/DGS10") == dgs10_before
    assert leftovers(home) == []


# --- the CLI --------------------------------------------------------------------------------------------------------


def test_cli_pull_exits_0_when_all_ok_and_1_when_a_dataset_failed(home, server, realdata_dir):
    runner = CliRunner()
    ok = runner.invoke(app, ["data", "pull", "--source", "french", "--home", str(home)], env=WIDE)
    assert ok.exit_code == 0, ok.output
    assert {k: status for k, (status, _) in pull_table(ok.stdout).items()} == {
        key: "ok" for key in sources.FRENCH_DATASETS}
    factors_before = snapshot(home, "french/factors_monthly")
    real = (realdata_dir / "french" / "F-F_Research_Data_Factors_CSV.zip").read_bytes()
    serve(server, FACTORS, (200, real[:4000]))

    failed = runner.invoke(app, ["data", "pull", "-s", "french", "--home", str(home)], env=WIDE)

    assert failed.exit_code == 1, failed.output
    n = len(sources.FRENCH_DATASETS)
    assert f"1 of {n} datasets failed; their previous vintage (if any) is kept." in failed.stderr
    table = pull_table(failed.stdout)
    status, detail = table.pop("french/factors_monthly")
    assert status == "FAILED" and detail.startswith("F-F_Research_Data_Factors_CSV.zip: truncated or corrupt zip")
    assert {status for status, _ in table.values()} == {"ok"} and len(table) == n - 1
    assert snapshot(home, "french/factors_monthly") == factors_before
    assert Cache(home).manifest()["french/portfolios_me_monthly"].fetched_at >= factors_before["entry"]["fetched_at"]


def test_cli_unknown_source_is_a_user_error_exit_2(home, monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["regime", "data", "pull", "--source", "nasdaq", "--home", str(home)])
    monkeypatch.setenv("COLUMNS", "300")

    with pytest.raises(SystemExit) as exc:
        main()

    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "unknown source(s) nasdaq; choose from french, fred, finra" in err
    assert "Traceback" not in err
