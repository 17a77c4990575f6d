"""Parquet cache of parsed datasets plus a JSON manifest recording where and when each came from.

Layout under ``<home>/data/``: ``<source>/<dataset>.<vintage id>.parquet`` per dataset and ``manifest.json`` with
one entry per cache key (``fred/DGS10``): source, URL, fetched_at (UTC), sha256 of the raw bytes, first/last date,
rows and the file holding that vintage. Every write goes to a temporary file in the same directory and is renamed
into place; a new vintage gets a new file and the manifest switches to it in one atomic rename before the old file
is removed. So a crash or a failed fetch never leaves a half-written file, and the manifest always describes the
file it points to.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import NoDataError
from ..home import data_dir

MANIFEST = "manifest.json"


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
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


class Cache:
    """The data cache of one home dir. Keys look like ``<source>/<dataset>``."""

    def __init__(self, home: Path):
        self.root = data_dir(home)

    def path(self, key: str) -> Path:
        """File of the current vintage of ``key`` (per the manifest)."""
        entry = self.manifest().get(key)
        return self.root / entry.file if entry and entry.file else self.root / f"{key}.parquet"

    def manifest(self) -> dict[str, CacheEntry]:
        path = self.root / MANIFEST
        if not path.exists():
            return {}
        records = json.loads(path.read_text())
        return {key: CacheEntry(**record) for key, record in records.items()}

    def has(self, key: str) -> bool:
        return key in self.manifest() and self.path(key).exists()

    def write(self, key: str, frame: pd.DataFrame, *, source: str, url: str, raw_sha256: str,
              extra: dict[str, Any] | None = None) -> CacheEntry:
        """Store a validated frame (DatetimeIndex or a ``settlement_date`` column) and record it in the manifest."""
        dates = frame.index if isinstance(frame.index, pd.DatetimeIndex) else pd.DatetimeIndex(frame.iloc[:, 0])
        file = f"{key}.{uuid.uuid4().hex[:12]}.parquet"
        entry = CacheEntry(
            key=key,
            source=source,
            url=url,
            fetched_at=utc_now_iso(),
            sha256=raw_sha256,
            first=dates.min().date().isoformat() if len(dates) else None,
            last=dates.max().date().isoformat() if len(dates) else None,
            rows=len(frame),
            extra=extra or {},
            file=file,
        )
        atomic_write_parquet(self.root / file, frame)
        records = {k: asdict(v) for k, v in self.manifest().items()}
        records[key] = asdict(entry)
        atomic_write_bytes(self.root / MANIFEST, json.dumps(records, indent=2, sort_keys=True).encode())
        # older vintages, and any orphan of an interrupted write, are no longer referenced
        for stale in self.root.glob(f"{key}.*.parquet"):
            if stale.name != Path(file).name:
                stale.unlink(missing_ok=True)
        return entry

    def read(self, key: str) -> pd.DataFrame:
        path = self.path(key)
        if not path.exists():
            raise NoDataError(f"{key} is not in the cache at {self.root}; run `regime data pull` first")
        return pd.read_parquet(path)
