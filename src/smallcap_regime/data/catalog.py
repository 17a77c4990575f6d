"""Typed access to the live data catalogue and lag table in ``series.toml``."""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd

from ..errors import ConfigError

CATALOG_PATH = Path(__file__).with_name("series.toml")
FREQUENCIES = ("daily", "weekly", "monthly", "quarterly")


@dataclass(frozen=True)
class SeriesSpec:
    """One FRED series: where it goes in the panel and when it is known."""

    series_id: str
    name: str
    unit: str
    freq: str
    lag: str
    max_age: str | None
    priority: int
    valid_range: tuple[float, float] | None
    typical: tuple[float, float] | None = None


def parse_duration(text: str, where: str = "duration") -> pd.DateOffset | pd.Timedelta:
    """``"12d"`` -> 12 days, ``"1m"`` -> one calendar month (month arithmetic keeps month ends at month ends)."""
    text = str(text).strip().lower()
    if len(text) >= 2 and text[:-1].isdigit() and text[-1] in "dm":
        n = int(text[:-1])
        return pd.Timedelta(days=n) if text[-1] == "d" else pd.DateOffset(months=n)
    raise ConfigError(f"{where}: {text!r} is not a duration like '12d' or '1m'")


def catalog_path() -> Path:
    """The catalogue in use: ``$REGIME_SERIES_FILE`` (your own series list and lags) or the packaged one."""
    override = os.environ.get("REGIME_SERIES_FILE")
    return Path(override) if override else CATALOG_PATH


def load_catalog(path: Path | None = None) -> dict:
    return _read_catalog(path or catalog_path())


@lru_cache(maxsize=8)
def _read_catalog(path: Path) -> dict:
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: series catalogue not found (check REGIME_SERIES_FILE)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc})") from None
    except UnicodeDecodeError as exc:  # TOML is UTF-8; a binary or Latin-1 file is one line, not a traceback
        raise ConfigError(f"{path}: not a UTF-8 text file (byte 0x{exc.object[exc.start]:02x} at offset "
                          f"{exc.start}); TOML files are UTF-8") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a TOML file") from None
    for section in ("french", "finra", "fred"):
        if section not in raw:
            raise ConfigError(f"{path}: missing section [{section}]")
    return raw


def fred_specs(path: Path | None = None) -> list[SeriesSpec]:
    """All FRED series of the catalogue, validated."""
    path = path or catalog_path()
    specs = []
    for series_id, raw in load_catalog(path).get("fred", {}).items():
        where = f"{path.name} [fred.{series_id}]"
        missing = {"name", "freq", "lag"} - raw.keys()
        if missing:
            raise ConfigError(f"{where}: missing key(s) {', '.join(sorted(missing))}")
        if raw["freq"] not in FREQUENCIES:
            raise ConfigError(f"{where}: freq {raw['freq']!r} is not one of {', '.join(FREQUENCIES)}")
        parse_duration(raw["lag"], where)
        specs.append(
            SeriesSpec(
                series_id=series_id,
                name=raw["name"],
                unit=raw.get("unit", ""),
                freq=raw["freq"],
                lag=raw["lag"],
                max_age=raw.get("max_age"),
                priority=int(raw.get("priority", 1)),
                valid_range=_bounds(raw.get("range"), f"{where} range"),
                typical=_bounds(raw.get("typical"), f"{where} typical"),
            )
        )
    return specs



def _bounds(value: object, where: str) -> tuple[float, float] | None:
    """A ``[low, high]`` pair of finite numbers with low < high, or None when the key is absent."""
    if value is None:
        return None
    try:
        low, high = (float(v) for v in value)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {value!r} is not a [low, high] pair of numbers") from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ConfigError(f"{where}: {value!r} must be finite numbers with low < high")
    return low, high
