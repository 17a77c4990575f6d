"""The offline sample: real data shipped inside registry packages, used when no live data has been pulled.

Sources and units (checked against each other, see tests/test_sample.py):

- ``linearmodels.datasets.french``: 25 size x value portfolios (``S1V1`` .. ``S5V5``), monthly **total** returns in
  **decimals**, 1949-01..2017-03 (regressing the large-size portfolios on the market excess return and RF gives an
  RF loading of ~1, so they are total, not excess, returns). Small leg = equal mix of the three smallest-quintile
  portfolios (``S1V1``, ``S1V3``, ``S1V5``); large leg = the same for the largest quintile (``S5*``).
- ``arch.data.frenchdata``: Fama-French ``Mkt-RF``, ``SMB``, ``HML``, ``RF`` in **percent per month**,
  1926-07..2018-11 (converted to decimals here).
- ``arch.data.default``: Moody's ``AAA`` and ``BAA`` corporate bond yields, **percent p.a.**, monthly averages
  stamped on the 1st of the month, 1919-01..2018-12; known one month later (same lag as the live FRED series).
- ``arch.data.core_cpi``: ``CPILFESL`` core CPI index, monthly, 1957-01..2018-11; a proxy for headline CPI.

The sample's month grid is where both legs exist: 1949-01..2017-03.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

import pandas as pd

from .cache import sha256_hex
from .panel import Panel, RawSeries, assemble_panel

SMALL_PORTFOLIOS = ("S1V1", "S1V3", "S1V5")
LARGE_PORTFOLIOS = ("S5V1", "S5V3", "S5V5")
SAMPLE_NOTE = (
    "offline sample: real data shipped with the arch and linearmodels packages "
    "(size x value portfolios 1949-01..2017-03, Fama-French factors, Moody's AAA/BAA, core CPI); "
    "it ends 2017-03 - run `regime data pull` for live data"
)


def _package_file(module_name: str, filename: str) -> Path:
    """``filename`` inside the package directory ``module_name`` (e.g. ``arch.data.default``), found without
    importing it: importing ``linearmodels`` alone costs a second of every offline forecast."""
    top, *sub = module_name.split(".")
    spec = importlib.util.find_spec(top)  # a top-level spec is located, not executed
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"package {top!r} (the offline sample's data) is not installed")
    return Path(next(iter(spec.submodule_search_locations)), *sub, filename)


#: (module, file) of each sample table.
SAMPLE_FILES = {"size_value": ("linearmodels.datasets.french", "french.csv.bz2"),
                "factors": ("arch.data.frenchdata", "frenchdata.csv.gz"),
                "moodys": ("arch.data.default", "default.csv.gz"),
                "core_cpi": ("arch.data.core_cpi", "core-cpi.csv.gz")}


def sample_files() -> list[Path]:
    """The files the offline sample is read from."""
    return [_package_file(module, name) for module, name in SAMPLE_FILES.values()]


def _read_csv(module_name: str, filename: str) -> tuple[pd.DataFrame, dict]:
    path = _package_file(module_name, filename)
    package = module_name.split(".")[0]
    vintage = {"source": "sample", "file": f"{module_name}/{filename}", "sha256": sha256_hex(path.read_bytes()),
               "package_version": importlib.metadata.version(package)}
    return pd.read_csv(path), vintage


def load_sample_frames() -> tuple[dict[str, pd.DataFrame], dict[str, dict]]:
    """The raw sample tables, each on a DatetimeIndex, in the units documented in the module docstring."""
    frames, vintages = {}, {}

    size_value, vintages["sample/size_value_portfolios"] = _read_csv(*SAMPLE_FILES["size_value"])
    size_value.index = pd.to_datetime(size_value.pop("dates")) + pd.offsets.MonthEnd(0)
    frames["size_value"] = size_value.astype("float64")

    factors, vintages["sample/ff_factors"] = _read_csv(*SAMPLE_FILES["factors"])
    factors.index = pd.to_datetime(factors.pop("Date").astype(str), format="%Y%m") + pd.offsets.MonthEnd(0)
    frames["factors"] = factors.astype("float64") / 100.0

    default, vintages["sample/moodys_yields"] = _read_csv(*SAMPLE_FILES["moodys"])
    default.index = pd.to_datetime(default.pop("Date"))
    frames["moodys"] = default.astype("float64")

    cpi, vintages["sample/core_cpi"] = _read_csv(*SAMPLE_FILES["core_cpi"])
    cpi.index = pd.to_datetime(cpi.pop("Date"))
    frames["core_cpi"] = cpi.astype("float64")
    return frames, vintages


def load_sample_panel() -> Panel:
    """Month-end point-in-time panel from the offline sample (same column names and units as the live panel)."""
    frames, vintages = load_sample_frames()
    sv, ff = frames["size_value"], frames["factors"]
    returns = pd.DataFrame(
        {
            "small_ret": sv[list(SMALL_PORTFOLIOS)].mean(axis=1),
            "large_ret": sv[list(LARGE_PORTFOLIOS)].mean(axis=1),
        }
    ).join(ff.rename(columns={"Mkt-RF": "mkt_excess_ret", "SMB": "smb", "HML": "hml", "RF": "rf"}), how="left")
    raws = [
        RawSeries("aaa", frames["moodys"]["AAA"], "monthly", "1m", "40d", origin="sample/moodys_yields"),
        RawSeries("baa", frames["moodys"]["BAA"], "monthly", "1m", "40d", origin="sample/moodys_yields"),
        RawSeries("cpi", frames["core_cpi"]["CPILFESL"], "monthly", "1m", "40d", origin="sample/core_cpi"),
    ]
    frame = assemble_panel(returns, raws)
    return Panel(frame=frame, source="sample", vintages=vintages, notes=[SAMPLE_NOTE])
