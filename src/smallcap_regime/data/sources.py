"""Live sources: what to download, from where, and how each download becomes a cached, validated frame.

Base URLs come from ``$REGIME_FRENCH_URL``, ``$REGIME_FRED_URL`` and ``$REGIME_FINRA_URL`` so a local mirror (or a
test server on loopback) can stand in for the internet. Each dataset is fetched (within ``$REGIME_<SOURCE>_MAX_MB``),
parsed and validated (:mod:`.validate`: no future dates, not older than the cached vintage, leg columns present,
trailing missing rows trimmed) before the cache is touched: a failed or invalid download leaves the previous
vintage in place and the others still update. A pull holds the home's data lock from start to end, so concurrent
pulls take turns.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from ..env import env_number
from ..errors import ConfigError, FetchError, RegimeError
from ..urls import redact_url
from . import finra, fred, french
from .cache import Cache, CacheEntry, date_range, sha256_hex
from .catalog import fred_specs, load_catalog, parse_duration
from .http import RetryPolicy, fetch_bytes, make_client
from .validate import check_legs, check_not_future, check_not_older, trim_trailing_missing

SOURCES = ("french", "fred", "finra")
DEFAULT_BASES = {
    "french": "https://mba.tuck.dartmouth.edu/pages/faculty/ken.french",
    "fred": "https://fred.stlouisfed.org",
    "finra": "https://cdn.finra.org",
}
PORTFOLIOS_KEY = "french/portfolios_me_monthly"  # the legs' returns: without it there is no live panel
PORTFOLIOS_25_KEY = "french/portfolios_size_bm_monthly"  # 5 x 5 size x book-to-market: the valuation inputs
# cache key -> (dataset file name on the French site, daily?, parser)
FRENCH_DATASETS = {
    PORTFOLIOS_KEY: ("Portfolios_Formed_on_ME", False, french.parse_portfolios_me),
    "french/portfolios_me_daily": ("Portfolios_Formed_on_ME_Daily", True, french.parse_portfolios_me),
    "french/factors_monthly": ("F-F_Research_Data_Factors", False, french.parse_factors),
    "french/factors_daily": ("F-F_Research_Data_Factors_daily", True, french.parse_factors),
    PORTFOLIOS_25_KEY: ("25_Portfolios_5x5", False, french.parse_portfolios_25),
}
FINRA_KEY = "finra/short_interest"
# Largest decoded body accepted per source, in MB (``$REGIME_<SOURCE>_MAX_MB``): several times the real files
# (French daily zip 0.9 MB packed, 3 MB unpacked; a FRED series under 1 MB; a FINRA file about 5 MB).
DEFAULT_MAX_MB = {"french": 50.0, "fred": 20.0, "finra": 50.0}
OFFLINE_HINT = ("no source could be reached (no network?); the offline sample needs none: `regime quickstart`, "
                "`regime features --source sample`, experiments with [data] source = \"sample\"")


def base_url(source: str) -> str:
    return os.environ.get(f"REGIME_{source.upper()}_URL", DEFAULT_BASES[source]).rstrip("/")


def max_bytes(source: str) -> int:
    """Size bound for one decoded download of ``source``."""
    name = f"REGIME_{source.upper()}_MAX_MB"
    mb = env_number(name, DEFAULT_MAX_MB[source])
    if mb <= 0:
        raise ConfigError(f"{name}={mb:g} must be > 0 (megabytes)")
    return int(mb * 2**20)


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
    unreachable: bool = False


@dataclass(frozen=True)
class Job:
    """One unit of a pull: a cache key and the function that updates it."""

    key: str
    run: Callable[[Cache, httpx.Client, RetryPolicy], PullResult]


@dataclass(frozen=True)
class Checks:
    """What every job validates against: today's date, whether an older vintage may win, size bounds per source."""

    today: date
    allow_older: bool = False
    max_bytes: dict[str, int] = field(default_factory=dict)


def _store(cache: Cache, key: str, frame: pd.DataFrame, url: str, raw: bytes, checks: Checks,
           extra: dict | None = None, note: str | None = None) -> PullResult:
    """Write a validated frame unless it ends before the cached vintage (see :func:`check_not_older`)."""
    with cache.locked():  # the comparison and the write must see the same cached vintage
        check_not_older(key, date_range(frame)[1], cache.manifest().get(key), checks.allow_older)
        # the manifest (and the data vintages logged to MLflow from it) never holds a mirror's password
        entry = cache.write(key, frame, source=key.split("/")[0], url=redact_url(url), raw_sha256=sha256_hex(raw),
                            extra=extra)
    message = f"{entry.rows} rows {entry.first}..{entry.last}" + (f"; {note}" if note else "")
    return PullResult(key, True, message, entry.rows, entry.first, entry.last)


def leg_columns() -> tuple[str, str]:
    """The small and large leg columns of ``Portfolios_Formed_on_ME`` from the series catalogue."""
    cfg = load_catalog()["french"]
    return cfg["small_column"], cfg["large_column"]


def _french_job(key: str, dataset: str, daily: bool, parser, checks: Checks) -> Job:
    def run(cache: Cache, client: httpx.Client, policy: RetryPolicy) -> PullResult:
        url, where = french_url(dataset), f"{dataset}_CSV.zip"
        limit = checks.max_bytes["french"]
        raw = fetch_bytes(url, policy, client, max_bytes=limit)
        frame = parser(raw, where, daily=daily, max_bytes=limit)
        if parser is french.parse_portfolios_me:  # the file the small and large legs come from
            legs = leg_columns()
            check_legs(frame, legs, where)
            frame, note = trim_trailing_missing(frame, legs)
        elif parser is french.parse_portfolios_25:
            frame, note = trim_trailing_missing(frame, [c for c in frame.columns if c.startswith("ret/")])
            revised = beme_revisions(cache.read(key) if cache.has(key) else None, frame)
            note = "; ".join(filter(None, [note, revised])) or None
        else:
            frame, note = trim_trailing_missing(frame, frame.columns)
        check_not_future(frame.index, where, checks.today)
        extra = {"vintage": frame.attrs.get("vintage"), **({"trimmed": note} if note else {})}
        return _store(cache, key, frame, url, raw, checks, extra, note)

    return Job(key, run)


def beme_revisions(old: pd.DataFrame | None, new: pd.DataFrame) -> str | None:
    """How a new vintage of `25_Portfolios_5x5` restates the cached BE/ME (None when nothing changed).

    The library recomputes the whole file every month; the latest formation year moves most (late filers reach
    Compustat). The panel always uses the newest vintage for all months (vintages are never spliced), so a
    revision changes the valuation features of the months it touches; this note says which and by how much.
    """
    if old is None or old.empty:
        return None
    columns = [c for c in new.columns if c.startswith("beme/") and c in old.columns]
    common = new.index.intersection(old.index)
    before, after = old.loc[common, columns].to_numpy(), new.loc[common, columns].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        change = np.abs(np.log(after / before))
    moved = np.nan_to_num(change, nan=0.0).max(axis=1) > 1e-9
    if not moved.any():
        return None
    months = common[moved]
    return (f"BE/ME restated for {int(moved.sum())} month(s) {months[0]:%Y-%m}..{months[-1]:%Y-%m}, largest "
            f"change {np.nanmax(change):.3f} log points")


def _fred_job(spec, checks: Checks) -> Job:
    def run(cache: Cache, client: httpx.Client, policy: RetryPolicy) -> PullResult:
        url, where = fred_url(spec.series_id), f"FRED {spec.series_id}"
        raw = fetch_bytes(url, policy, client, max_bytes=checks.max_bytes["fred"])
        series = fred.parse_fred_csv(raw, spec.series_id, where, valid_range=spec.valid_range, typical=spec.typical)
        check_not_future(series.index, where, checks.today)
        return _store(cache, f"fred/{spec.series_id}", series.to_frame("value"), url, raw, checks)

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


def _finra_job(symbols: Sequence[str], first: date, lag_days: int, checks: Checks,
               on_note: Callable[[str], None] | None = None) -> Job:
    def run(cache: Cache, client: httpx.Client, policy: RetryPolicy) -> PullResult:
        entry, old, done = _cached_short_interest(cache)
        last = checks.today - timedelta(days=lag_days)
        todo = [d for d in settlement_dates(first, last) if d.isoformat() not in done]
        if not todo:
            if entry is None:
                return PullResult(FINRA_KEY, True, "no settlement date to fetch yet")
            return PullResult(FINRA_KEY, True, f"up to date ({entry.rows} rows)", entry.rows, entry.first, entry.last)
        frames, fetched, failures, digests = [], [], [], []
        for i, d in enumerate(todo, start=1):
            if on_note:  # one file per settlement date: hundreds on a first pull
                on_note(f"{FINRA_KEY} {d} ({i}/{len(todo)})")
            # a settlement date on an exchange holiday moves one more business day back
            for candidate in (d, d - timedelta(days=3 if d.weekday() == 0 else 1)):
                try:
                    raw = fetch_bytes(finra_url(candidate), policy, client, max_bytes=checks.max_bytes["finra"])
                except FetchError as exc:
                    if exc.unreachable:
                        raise  # every other date would fail the same way, each after its retries
                    if exc.status == 404 and candidate == d:
                        continue
                    failures.append(f"{d}: {exc.reason}")
                    break
                where = f"shrt{candidate:%Y%m%d}.csv"
                frame = finra.parse_short_interest(raw, where, symbols, expected=candidate)
                check_not_future(frame["settlement_date"], where, checks.today)
                frames.append(frame)
                fetched.append(d.isoformat())
                digests.append(sha256_hex(raw))
                break
        if not fetched:
            raise FetchError(redact_url(base_url("finra")),
                             f"no short-interest file fetched ({len(todo)} dates tried; {failures[0]})")
        merged = merge_short_interest(old, pd.concat(frames, ignore_index=True))
        extra = {"fetched_dates": sorted(done | set(fetched)), "symbols": list(symbols)}
        result = _store(cache, FINRA_KEY, merged, base_url("finra"), "".join(digests).encode(), checks, extra)
        if failures:
            return PullResult(FINRA_KEY, True, f"{result.message}; {len(failures)} dates failed, e.g. {failures[0]}",
                              result.rows, result.first, result.last)
        return result

    return Job(FINRA_KEY, run)


def plan_pull(sources: Iterable[str] | None = None, *, today: date | None = None,
              on_note: Callable[[str], None] | None = None, allow_older: bool = False) -> list[Job]:
    """The jobs of a pull, in a stable order. ``sources`` is a subset of ``french``, ``fred``, ``finra``.

    ``on_note`` receives progress messages from jobs that make many requests (FINRA: one per settlement date).
    ``allow_older`` lets a download that ends before the cached vintage replace it.
    """
    chosen = list(sources) if sources else list(SOURCES)
    unknown = sorted(set(chosen) - set(SOURCES))
    if unknown:
        raise RegimeError(f"unknown source(s) {', '.join(unknown)}; choose from {', '.join(SOURCES)}")
    checks = Checks(today or date.today(), allow_older, {source: max_bytes(source) for source in chosen})
    jobs: list[Job] = []
    if "french" in chosen:
        jobs += [_french_job(key, *args, checks) for key, args in FRENCH_DATASETS.items()]
    if "fred" in chosen:
        jobs += [_fred_job(spec, checks) for spec in fred_specs()]
    if "finra" in chosen:
        cfg = load_catalog()["finra"]
        lag_days = parse_duration(cfg["lag"]).days
        first = date.fromisoformat(cfg["first_settlement"])
        jobs.append(_finra_job(tuple(cfg["symbols"]), first, lag_days, checks, on_note))
    return jobs


def run_job(job: Job, cache: Cache, client: httpx.Client, policy: RetryPolicy) -> PullResult:
    """Run one job; any failure becomes a failed result naming the dataset, and never touches the cache."""
    try:
        return job.run(cache, client, policy)
    except FetchError as exc:
        return PullResult(job.key, False, str(exc), unreachable=exc.unreachable)
    except RegimeError as exc:
        return PullResult(job.key, False, str(exc))
    except Exception as exc:  # noqa: BLE001 - a parser bug on one dataset must not stop the others
        return PullResult(job.key, False, f"{job.key}: unexpected {exc.__class__.__name__}: {exc}")


def offline_hint(results: Sequence[PullResult]) -> str | None:
    """A hint at the offline sample when no source could be reached at all, else None."""
    return OFFLINE_HINT if results and all(r.unreachable for r in results) else None


def pull(home: Path, sources: Iterable[str] | None = None, *, policy: RetryPolicy | None = None,
         on_result: Callable[[PullResult], None] | None = None, today: date | None = None,
         on_note: Callable[[str], None] | None = None, allow_older: bool = False,
         on_warning: Callable[[str], None] | None = None) -> list[PullResult]:
    """Download, validate and cache the chosen sources; returns one result per cache key.

    Holds the home's data lock throughout (a second pull waits, see ``$REGIME_LOCK_TIMEOUT``) and first repairs
    the cache (:meth:`Cache.repair`). ``on_warning`` receives each repair and the wait for a busy home. Once a
    source's host cannot be reached, its remaining datasets are skipped.
    """
    policy = policy or RetryPolicy.from_env()
    jobs = plan_pull(sources, today=today, on_note=on_note, allow_older=allow_older)
    cache = Cache(home)
    results = []
    with cache.locked(on_wait=on_warning), make_client(policy) as client:
        for note in cache.repair():
            if on_warning:
                on_warning(note)
        down: dict[str, PullResult] = {}
        for job in jobs:
            source = job.key.split("/")[0]
            if source in down:
                shown = redact_url(base_url(source))
                result = PullResult(job.key, False, f"skipped: {shown} unreachable (see {down[source].key})",
                                    unreachable=True)
            else:
                result = run_job(job, cache, client, policy)
                if result.unreachable:
                    down[source] = result
            results.append(result)
            if on_result:
                on_result(result)
    return results


def _count_changes(old: pd.DataFrame | None, merged: pd.DataFrame) -> tuple[int, int]:
    """Rows of ``merged`` that are new, and rows whose values differ from ``old``, by (settlement_date, symbol)."""
    if old is None or old.empty:
        return len(merged), 0
    keys = ["settlement_date", "symbol"]
    before = old.assign(settlement_date=pd.to_datetime(old["settlement_date"]).astype("datetime64[ns]"))
    after = merged.assign(settlement_date=pd.to_datetime(merged["settlement_date"]).astype("datetime64[ns]"))
    joined = after.merge(before, on=keys, how="left", suffixes=("", "_old"), indicator=True)
    added = int((joined["_merge"] == "left_only").sum())
    both = joined[joined["_merge"] == "both"]
    values = list(finra.QUANTITY_COLUMNS.values())
    changed = int((both[values].to_numpy() != both[[f"{c}_old" for c in values]].to_numpy()).any(axis=1).sum())
    return added, changed


def import_short_interest(home: Path, files: Sequence[Path], *, today: date | None = None) -> PullResult:
    """Ingest FINRA short-interest files downloaded by hand into the cache (merged with what is there).

    Every file is parsed and checked (plausible quantities, no settlement date in the future) before anything is
    written; the message counts the rows actually added and changed, and nothing is written when there are none.
    """
    cache = Cache(home)
    symbols = tuple(load_catalog()["finra"]["symbols"])
    checks = Checks(today or date.today())
    frames, raws, empty = [], [], []
    for path in files:
        raw = Path(path).read_bytes()
        frame = finra.parse_short_interest(raw, str(path), symbols)
        check_not_future(frame["settlement_date"], str(path), checks.today)
        frames.append(frame)
        raws.append(raw)
        if frame.empty:
            empty.append(Path(path).name)
    without = f"; no {'/'.join(symbols)} rows in {', '.join(empty)}" if empty else ""
    with cache.locked():
        entry, old, done = _cached_short_interest(cache)
        merged = merge_short_interest(old, pd.concat(frames, ignore_index=True))
        added, changed = _count_changes(old, merged)
        if not added and not changed:
            rows = entry.rows if entry else 0
            return PullResult(FINRA_KEY, True, f"0 rows added, cache unchanged ({rows} rows){without}", rows,
                              entry.first if entry else None, entry.last if entry else None)
        dates = {d.date().isoformat() for d in pd.to_datetime(merged["settlement_date"])}
        extra = {"fetched_dates": sorted(done | dates), "symbols": list(symbols)}
        url = "file://" + ",".join(str(Path(p).resolve()) for p in files)
        result = _store(cache, FINRA_KEY, merged, url, b"".join(raws), checks, extra)
    return PullResult(FINRA_KEY, True, f"{result.message} ({added} rows added, {changed} changed){without}",
                      result.rows, result.first, result.last)
