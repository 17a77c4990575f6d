"""Parquet cache of parsed datasets plus a JSON manifest recording where and when each came from.

Layout under ``<home>/data/``: ``<source>/<dataset>.<vintage id>.parquet`` per dataset and ``manifest.json`` with
one entry per cache key (``fred/DGS10``): source, URL, fetched_at (UTC), sha256 of the raw bytes, first/last date,
rows and the file holding that vintage. Every write goes to a temporary file in the same directory and is renamed
into place; a new vintage gets a new file and the manifest switches to it in one atomic rename before the old file
is removed. So a crash or a failed fetch never leaves a half-written file, and the manifest always describes the
file it points to.

Writers hold the home's data lock (:func:`smallcap_regime.locks.home_lock`) around the manifest's
read-modify-write and the removal of old files, so two processes never lose each other's entries or delete the file
the manifest of record points to. :meth:`Cache.repair` (run by every pull) rebuilds a corrupt manifest from the
Parquet files, drops entries whose file is missing or unreadable, and removes orphans and stale temp files.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import CacheCorruptError, NoDataError
from ..home import data_dir
from ..locks import home_lock

MANIFEST = "manifest.json"
CORRUPT_SUFFIX = ".corrupt"
# <source>/<dataset>.<12 hex digits>.parquet, as written by Cache.write
_VINTAGE_FILE = re.compile(r"(?P<name>.+)\.[0-9a-f]{12}\.parquet")


@dataclass(frozen=True)
class CacheEntry:
    """Manifest record of one cached dataset."""

    key: str
    source: str
    url: str
    fetched_at: str
    sha256: str
    first: str | None
    last: str | None
    rows: int
    extra: dict[str, Any] = field(default_factory=dict)
    file: str = ""


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` via a temp file in the same directory and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_parquet(path: Path, frame: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        frame.to_parquet(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sha256_hex(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def utc_now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def date_range(frame: pd.DataFrame) -> tuple[str | None, str | None]:
    """First and last date of a cached frame (DatetimeIndex, or dates in the first column)."""
    dates = frame.index if isinstance(frame.index, pd.DatetimeIndex) else pd.DatetimeIndex(frame.iloc[:, 0])
    if not len(dates):
        return None, None
    return dates.min().date().isoformat(), dates.max().date().isoformat()


class Cache:
    """The data cache of one home dir. Keys look like ``<source>/<dataset>``."""

    def __init__(self, home: Path):
        self.home = home
        self.root = data_dir(home)

    def locked(self, on_wait: Callable[[str], None] | None = None):
        """Context manager holding the home's data lock (re-entrant); see :func:`smallcap_regime.locks.home_lock`."""
        return home_lock(self.home, "data", "the data cache", on_wait=on_wait)

    def path(self, key: str) -> Path:
        """File of the current vintage of ``key`` (per the manifest)."""
        return self._file_of(key, self.manifest().get(key))

    def _file_of(self, key: str, entry: CacheEntry | None) -> Path:
        # entries written before vintage files existed have no `file` and live at <key>.parquet
        return self.root / entry.file if entry and entry.file else self.root / f"{key}.parquet"

    def manifest(self) -> dict[str, CacheEntry]:
        """The manifest of record.

        Raises
        ------
        CacheCorruptError
            If ``manifest.json`` is not a valid manifest (named in the message, with the repair command).
        """
        path = self.root / MANIFEST
        if not path.exists():
            return {}
        try:
            records = json.loads(path.read_text())
            return {key: CacheEntry(**record) for key, record in records.items()}
        except (ValueError, TypeError, AttributeError) as exc:
            raise CacheCorruptError(
                f"{path} is corrupt ({exc.__class__.__name__}: {exc}); run `regime data pull` to repair it"
            ) from None

    def has(self, key: str) -> bool:
        return key in self.manifest() and self.path(key).exists()

    def write(self, key: str, frame: pd.DataFrame, *, source: str, url: str, raw_sha256: str,
              extra: dict[str, Any] | None = None) -> CacheEntry:
        """Store a validated frame (DatetimeIndex or a ``settlement_date`` column) and record it in the manifest."""
        first, last = date_range(frame)
        file = f"{key}.{uuid.uuid4().hex[:12]}.parquet"
        entry = CacheEntry(key=key, source=source, url=url, fetched_at=utc_now_iso(), sha256=raw_sha256,
                           first=first, last=last, rows=len(frame), extra=extra or {}, file=file)
        with self.locked():
            atomic_write_parquet(self.root / file, frame)
            try:
                records = self._write_manifest({**self.manifest(), key: entry})
            except BaseException:
                (self.root / file).unlink(missing_ok=True)
                raise
            self._remove_unreferenced(records, key)
        return entry

    def read(self, key: str) -> pd.DataFrame:
        """The cached frame of ``key``.

        Raises
        ------
        NoDataError
            If ``key`` was never pulled or its file is gone.
        CacheCorruptError
            If its Parquet file cannot be read (named in the message, with the repair command).
        """
        try:
            return self._read_file(self.path(key), key)
        except FileNotFoundError:
            raise NoDataError(f"{key} is not in the cache at {self.root}; run `regime data pull` first") from None

    def repair(self) -> list[str]:
        """Bring the cache back to a consistent state; returns one note per fix (empty when nothing was wrong).

        Under the data lock: stale temp files of interrupted writes are removed; a corrupt manifest is moved aside
        (``manifest.json.corrupt``) and rebuilt from the newest readable Parquet file of each key; entries whose
        file is missing or unreadable are dropped (the next download of that dataset starts afresh); Parquet files
        no entry refers to are removed.
        """
        with self.locked():
            notes = self._remove_temp_files()
            try:
                entries, rebuilt = self.manifest(), False
            except CacheCorruptError as exc:
                entries, rebuilt = self._rebuild_manifest(), True
                notes.append(f"{exc}: moved it to {MANIFEST}{CORRUPT_SUFFIX} and rebuilt it from "
                             f"{len(entries)} cached file(s)")
            kept = {}
            for key, entry in entries.items():
                try:
                    self._read_file(self._file_of(key, entry), key)
                    kept[key] = entry
                except (FileNotFoundError, CacheCorruptError) as exc:
                    notes.append(f"{key}: dropped from the manifest, its file is unusable ({exc})")
            records = self._write_manifest(kept) if rebuilt or kept != entries else {
                k: asdict(v) for k, v in kept.items()}
            self._remove_unreferenced(records)
            return notes

    @staticmethod
    def _read_file(path: Path, key: str) -> pd.DataFrame:
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing")
        try:
            return pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several unrelated types for a damaged file
            raise CacheCorruptError(f"{path} ({key}) is corrupt ({exc.__class__.__name__}: {exc}); run "
                                    "`regime data pull` to download it again") from None

    def _write_manifest(self, entries: dict[str, CacheEntry]) -> dict[str, dict]:
        records = {k: asdict(v) for k, v in entries.items()}
        atomic_write_bytes(self.root / MANIFEST, json.dumps(records, indent=2, sort_keys=True).encode())
        return records

    def _vintage_files(self) -> dict[str, list[Path]]:
        """Parquet vintage files on disk per cache key."""
        found: dict[str, list[Path]] = {}
        for path in self.root.glob("*/*.parquet"):
            match = _VINTAGE_FILE.fullmatch(path.name)
            if match:
                found.setdefault(f"{path.parent.name}/{match['name']}", []).append(path)
        return found

    def _remove_unreferenced(self, records: dict[str, dict], key: str | None = None) -> None:
        """Remove vintage files (of ``key``, else of every key) that the manifest of record does not point to."""
        current = {record.get("file") for record in records.values()}
        for found, paths in self._vintage_files().items():
            stale = [path for path in paths if str(path.relative_to(self.root)) not in current]
            for path in stale if key in (None, found) else []:
                path.unlink(missing_ok=True)

    def _remove_temp_files(self) -> list[str]:
        stale = [p for p in self.root.rglob(".*.tmp") if p.is_file()]
        for path in stale:
            path.unlink(missing_ok=True)
        return [f"removed {len(stale)} stale temp file(s) of an interrupted write"] if stale else []

    def _rebuild_manifest(self) -> dict[str, CacheEntry]:
        """Entries for the newest readable vintage file of each key; the corrupt manifest is kept aside."""
        os.replace(self.root / MANIFEST, self.root / f"{MANIFEST}{CORRUPT_SUFFIX}")
        entries = {}
        for key, paths in sorted(self._vintage_files().items()):
            for path in sorted(paths, key=lambda p: p.stat().st_mtime_ns, reverse=True):
                try:
                    frame = self._read_file(path, key)
                except CacheCorruptError:
                    continue
                entries[key] = _recovered_entry(key, path, frame, self.root)
                break
        return entries


def _recovered_entry(key: str, path: Path, frame: pd.DataFrame, root: Path) -> CacheEntry:
    """What can be known of a vintage without its manifest entry: its file, rows, dates and file time."""
    first, last = date_range(frame)
    fetched = datetime.fromtimestamp(path.stat().st_mtime, UTC).replace(microsecond=0).isoformat()
    extra: dict[str, Any] = {"recovered": True}
    if "settlement_date" in frame.columns:  # FINRA: the dates it holds need no new download
        extra["fetched_dates"] = sorted({d.date().isoformat() for d in pd.to_datetime(frame["settlement_date"])})
    return CacheEntry(key=key, source=key.split("/")[0], url=f"recovered from {path.name}", fetched_at=fetched,
                      sha256="", first=first, last=last, rows=len(frame), extra=extra,
                      file=str(path.relative_to(root)))
