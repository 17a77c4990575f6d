"""Live sources: what to download, from where, and how each download becomes a cached, validated frame.

Base URLs come from ``$REGIME_FRENCH_URL``, ``$REGIME_FRED_URL`` and ``$REGIME_FINRA_URL`` so a local mirror (or a
test server on loopback) can stand in for the internet. Each dataset is fetched, parsed and validated before the
cache is touched: a failed or invalid download leaves the previous vintage in place and the others still update.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Callable, Iterable, Sequence

import httpx
import pandas as pd

from ..errors import DataFormatError, FetchError, RegimeError
from . import finra, french, fred
from .cache import Cache, CacheEntry, sha256_hex
from .catalog import fred_specs, load_catalog, parse_duration
from .http import RetryPolicy, fetch_bytes, make_client

SOURCES = ("french", "fred", "finra")
DEFAULT_BASES = {
    "french": "https://mba.tuck.dartmouth.edu/pages/faculty/ken.french",
    "fred": "https://fred.stlouisfed.org",
    "finra": "https://cdn.finra.org",
}
PORTFOLIOS_KEY = "french/portfolios_me_monthly"  # the legs' returns: without it there is no live panel
# cache key -> (dataset file name on the French site, daily?, parser)
FRENCH_DATASETS = {
    PORTFOLIOS_KEY: ("Portfolios_Formed_on_ME", False, french.parse_portfolios_me),
    "french/portfolios_me_daily": ("Portfolios_Formed_on_ME_Daily", True, french.parse_portfolios_me),
    "french/factors_monthly": ("F-F_Research_Data_Factors", False, french.parse_factors),
    "french/factors_daily": ("F-F_Research_Data_Factors_daily", True, french.parse_factors),
}
FINRA_KEY = "finra/short_interest"


def base_url(source: str) -> str:
    return os.environ.get(f"REGIME_{source.upper()}_URL", DEFAULT_BASES[source]).rstrip("/")


def french_url(dataset: str) -> str:
    return f"{base_url('french')}/ftp/{dataset}_CSV.zip"


def fred_url(series_id: str) -> str:
    return f"{base_url('fred')}/graph/fredgraph.csv?id={series_id}"


def finra_url(settlement: date) -> str:
    return f"{base_url('finra')}/equity/otcmarket/biweekly/shrt{settlement:%Y%m%d}.csv"


@dataclass(frozen=True)
class PullResult:
    """Outcome of updating one cache key."""

    key: str
    ok: bool
    message: str
    rows: int = 0
    first: str | None = None
    last: str | None = None


@dataclass(frozen=True)
class Job:
    """One unit of a pull: a cache key and the function that updates it."""

    key: str
    run: Callable[[Cache, httpx.Client, RetryPolicy], PullResult]


def _store(cache: Cache, key: str, frame: pd.DataFrame, url: str, raw: bytes, extra: dict | None = None) -> PullResult:
    entry = cache.write(key, frame, source=key.split("/")[0], url=url, raw_sha256=sha256_hex(raw), extra=extra)
    return PullResult(key, True, f"{entry.rows} rows {entry.first}..{entry.last}", entry.rows, entry.first, entry.last)


def _french_job(key: str, dataset: str, daily: bool, parser) -> Job:
    def run(cache: Cache, client: httpx.Client, policy: RetryPolicy) -> PullResult:
        url = french_url(dataset)
        raw = fetch_bytes(url, policy, client)
        frame = parser(raw, f"{dataset}_CSV.zip", daily=daily)
        return _store(cache, key, frame, url, raw, {"vintage": frame.attrs.get("vintage")})

    return Job(key, run)


def _fred_job(spec) -> Job:
    def run(cache: Cache, client: httpx.Client, policy: RetryPolicy) -> PullResult:
        url = fred_url(spec.series_id)
        raw = fetch_bytes(url, policy, client)
        series = fred.parse_fred_csv(raw, spec.series_id, f"FRED {spec.series_id}", valid_range=spec.valid_range)
        return _store(cache, f"fred/{spec.series_id}", series.to_frame("value"), url, raw)

    return Job(f"fred/{spec.series_id}", run)


def settlement_dates(first: date, last: date) -> list[date]:
    """FINRA settlement dates: the 15th and the month end, each moved back to a weekday, within [first, last]."""
    out = []
    for month_start in pd.date_range(pd.Timestamp(first).replace(day=1), last, freq="MS"):
        for day in (month_start.replace(day=15), month_start + pd.offsets.MonthEnd(0)):
            d = day.date()
            while d.weekday() >= 5:
                d -= timedelta(days=1)
            if first <= d <= last:
                out.append(d)
    return out


def merge_short_interest(old: pd.DataFrame | None, new: pd.DataFrame) -> pd.DataFrame:
    """Union of two short-interest frames; for a repeated (settlement_date, symbol) the newer row wins."""
    frames = [f for f in (old, new) if f is not None and not f.empty]
    if not frames:
        return new
    merged = pd.concat(frames, ignore_index=True)
    merged = merged.drop_duplicates(["settlement_date", "symbol"], keep="last")
    return merged.sort_values(["settlement_date", "symbol"]).reset_index(drop=True)


def _cached_short_interest(cache: Cache) -> tuple[CacheEntry | None, pd.DataFrame | None, set[str]]:
    """Manifest entry, cached frame and settlement dates already fetched.

    A manifest entry whose Parquet file is gone (deleted by hand) counts as never pulled.
    """
    entry = cache.manifest().get(FINRA_KEY) if cache.has(FINRA_KEY) else None
    if entry is None:
        return None, None, set()
    return entry, cache.read(FINRA_KEY), set(entry.extra.get("fetched_dates", []))


def _finra_job(symbols: Sequence[str], first: date, lag_days: int, today: date | None,
               on_note: Callable[[str], None] | None = None) -> Job:
    def run(cache: Cache, client: httpx.Client, policy: RetryPolicy) -> PullResult:
        entry, old, done = _cached_short_interest(cache)
        last = (today or date.today()) - timedelta(days=lag_days)
        todo = [d for d in settlement_dates(first, last) if d.isoformat() not in done]
        if not todo:
            return PullResult(FINRA_KEY, True, f"up to date ({entry.rows} rows)", entry.rows, entry.first, entry.last)
        frames, fetched, failures, digests = [], [], [], []
        for i, d in enumerate(todo, start=1):
            if on_note:  # one file per settlement date: hundreds on a first pull
                on_note(f"{FINRA_KEY} {d} ({i}/{len(todo)})")
            # a settlement date on an exchange holiday moves one more business day back
            for candidate in (d, d - timedelta(days=3 if d.weekday() == 0 else 1)):
                try:
                    raw = fetch_bytes(finra_url(candidate), policy, client)
                except FetchError as exc:
                    if exc.status == 404 and candidate == d:
                        continue
                    failures.append(f"{d}: {exc.reason}")
                    break
                frames.append(finra.parse_short_interest(raw, f"shrt{candidate:%Y%m%d}.csv", symbols))
                fetched.append(d.isoformat())
                digests.append(sha256_hex(raw))
                break
        if not fetched:
            raise FetchError(base_url("finra"), f"no short-interest file fetched ({len(todo)} dates tried; {failures[0]})")
        merged = merge_short_interest(old, pd.concat(frames, ignore_index=True))
        extra = {"fetched_dates": sorted(done | set(fetched)), "symbols": list(symbols)}
        result = _store(cache, FINRA_KEY, merged, base_url("finra"), "".join(digests).encode(), extra)
        if failures:
            return PullResult(FINRA_KEY, True, f"{result.message}; {len(failures)} dates failed, e.g. {failures[0]}",
                              result.rows, result.first, result.last)
        return result

    return Job(FINRA_KEY, run)


def plan_pull(sources: Iterable[str] | None = None, *, today: date | None = None,
              on_note: Callable[[str], None] | None = None) -> list[Job]:
    """The jobs of a pull, in a stable order. ``sources`` is a subset of ``french``, ``fred``, ``finra``.

    ``on_note`` receives progress messages from jobs that make many requests (FINRA: one per settlement date).
    """
    chosen = list(sources) if sources else list(SOURCES)
    unknown = sorted(set(chosen) - set(SOURCES))
    if unknown:
        raise RegimeError(f"unknown source(s) {', '.join(unknown)}; choose from {', '.join(SOURCES)}")
    jobs: list[Job] = []
    if "french" in chosen:
        jobs += [_french_job(key, *args) for key, args in FRENCH_DATASETS.items()]
    if "fred" in chosen:
        jobs += [_fred_job(spec) for spec in fred_specs()]
    if "finra" in chosen:
        cfg = load_catalog()["finra"]
        lag_days = parse_duration(cfg["lag"]).days
        first = date.fromisoformat(cfg["first_settlement"])
        jobs.append(_finra_job(tuple(cfg["symbols"]), first, lag_days, today, on_note))
    return jobs


def run_job(job: Job, cache: Cache, client: httpx.Client, policy: RetryPolicy) -> PullResult:
    """Run one job; download and format failures become a failed result and never touch the cache."""
    try:
        return job.run(cache, client, policy)
    except (FetchError, DataFormatError) as exc:
        return PullResult(job.key, False, str(exc))
    except (httpx.HTTPError, OSError, ValueError, NotImplementedError) as exc:
        # unexpected, but one bad dataset must not stop the others: report it with its type
        return PullResult(job.key, False, f"{exc.__class__.__name__}: {exc}")


def pull(home: Path, sources: Iterable[str] | None = None, *, policy: RetryPolicy | None = None,
         on_result: Callable[[PullResult], None] | None = None, today: date | None = None,
         on_note: Callable[[str], None] | None = None) -> list[PullResult]:
    """Download, validate and cache the chosen sources; returns one result per cache key."""
    policy = policy or RetryPolicy.from_env()
    cache = Cache(home)
    results = []
    with make_client(policy) as client:
        for job in plan_pull(sources, today=today, on_note=on_note):
            result = run_job(job, cache, client, policy)
            results.append(result)
            if on_result:
                on_result(result)
    return results


def import_short_interest(home: Path, files: Sequence[Path]) -> PullResult:
    """Ingest FINRA short-interest files downloaded by hand into the cache (merged with what is there)."""
    cache = Cache(home)
    symbols = tuple(load_catalog()["finra"]["symbols"])
    _, merged, done = _cached_short_interest(cache)
    raws = []
    for path in files:
        raw = Path(path).read_bytes()
        merged = merge_short_interest(merged, finra.parse_short_interest(raw, str(path), symbols))
        raws.append(raw)
    dates = {d.date().isoformat() for d in pd.to_datetime(merged["settlement_date"])}
    extra = {"fetched_dates": sorted(done | dates), "symbols": list(symbols)}
    url = "file://" + ",".join(str(Path(p).resolve()) for p in files)
    return _store(cache, FINRA_KEY, merged, url, b"".join(raws), extra)
