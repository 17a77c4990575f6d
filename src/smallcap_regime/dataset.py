"""The one path from an experiment to model inputs: experiment -> panel -> feature spec -> features + targets.

Backtest, tuning, training, forecasting and serving all call :func:`build_dataset`, so the rows a model is served
are built exactly as the rows it was trained on (same data source, size legs, feature spec and horizon).

A dataset loaded from a home is reused from ``<home>/datasets`` when nothing it is built from changed (see
:func:`dataset_key`): a forecast then skips reading the cache, the panel and the features.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .configs import load_config
from .data import Panel, load_panel
from .data.cache import MANIFEST, atomic_write_bytes
from .errors import ConfigError
from .experiment import Experiment
from .features.build import FeatureSpec, build_features
from .features.targets import build_targets
from .home import data_dir
from .names import target_column

#: Built datasets kept per home (a few data vintages x experiments x tuning cuts).
KEEP = 16
_PACKAGE = Path(__file__).resolve().parent
#: Packages whose files the offline sample is read from.
_SAMPLE_PACKAGES = ("arch", "linearmodels")


@dataclass(frozen=True)
class Dataset:
    """Model inputs of one experiment.

    Attributes
    ----------
    experiment : the experiment it was built for.
    panel : the point-in-time monthly panel (cut at ``before`` when given).
    spec : the feature spec.
    features : DataFrame, shape (n_months, n_features), float64; row t uses data published by t only.
    targets : DataFrame, shape (n_months, 5): ``<target>_<h>m`` (decimal), ``<target>_<h>m_up`` (0/1) for both
        targets and ``tbill_<h>m``; NaN in the last h rows (not realised yet).
    """

    experiment: Experiment
    panel: Panel
    spec: FeatureSpec
    features: pd.DataFrame
    targets: pd.DataFrame

    def target(self, target: str, label: bool = False) -> pd.Series:
        """The ``relative``/``absolute`` target (decimal return) or, with ``label``, its 0/1 label."""
        return self.targets[target_column(target, self.experiment.horizon, label=label)]


def build_dataset(exp: Experiment, *, home: Path | None = None, panel: Panel | None = None,
                  before: pd.Timestamp | None = None) -> Dataset:
    """Features and targets of an experiment.

    Parameters
    ----------
    exp : the experiment (data source and size legs, feature spec, horizon).
    home : home dir whose cache holds live data; needed unless ``panel`` is given or the source is the sample.
    panel : a prebuilt panel (tests, tuning workers); default: load it as the experiment says.
    before : keep only panel rows strictly before this date, cut before any feature or target is built (tuning
        uses it so the out-of-sample period cannot influence anything it computes).

    Raises
    ------
    ConfigError
        The feature spec's seasonality window differs from the experiment's horizon.
    """
    spec = exp.features()
    window = spec.families.get("seasonality", {}).get("window_months")
    if window is not None and window != exp.horizon:
        raise ConfigError(f"{spec.path}: [seasonality] window_months = {window} but experiment {exp.name!r} "
                          f"forecasts {exp.horizon} months; the calendar flags must describe the forecast window")
    key = None
    if panel is None:
        if home is None and exp.data_source == "live":
            raise ConfigError(f"experiment {exp.name!r} reads live data: pass home (the dir holding the cache)")
        if home is not None:
            key = dataset_key(home, exp, before)
            stored = _load_stored(home, key) if key else None
            if stored is not None:
                return _from_start(Dataset(exp, stored["panel"], spec, stored["features"], stored["targets"]))
        panel = load_panel(home or Path("."), exp.data_source, small_column=exp.small_column,
                           large_column=exp.large_column)
    if before is not None:
        panel = Panel(panel.frame[panel.frame.index < before], panel.source, panel.vintages, panel.notes)
    data = Dataset(exp, panel, spec, build_features(panel.frame, spec), build_targets(panel.frame, exp.horizon))
    if key and home is not None:
        _store(home, key, {"panel": panel, "features": data.features, "targets": data.targets})
    return _from_start(data)


def _from_start(data: Dataset) -> Dataset:
    """Rows from ``[options] train_start`` on: features are computed on the whole panel (their trailing windows
    reach back before it), then earlier rows are left out of every model."""
    start = data.experiment.options.train_start
    if not start:
        return data
    keep = data.features.index >= pd.Timestamp(start) + pd.offsets.MonthEnd(0)
    return Dataset(data.experiment, data.panel, data.spec, data.features[keep], data.targets[keep])


# ------------------------------------------------------------------------------------- reuse of built datasets
def datasets_dir(home: Path) -> Path:
    """``<home>/datasets``: panels, features and targets built from the home's data (safe to delete)."""
    return home / "datasets"


def dataset_key(home: Path, exp: Experiment, before: pd.Timestamp | None) -> str | None:
    """Hash of everything a dataset loaded from ``home`` is built from; None when the data cannot be keyed (no
    manifest yet: the panel loader says what is missing).

    That is: the data (the cache manifest - dataset hashes, vintage files - and those files' sizes and
    modification times for live data; the sample packages' versions and files for the offline sample), the series
    catalogue, the feature spec as read from its TOML, the experiment's source, size legs, horizon and cut
    (``before``), and the code that builds them (``data/``, ``features/`` and this module, hashed file by file).
    A new pull, another spec or another version of the code gives another key: a stored dataset is never stale.
    """
    from .data.catalog import catalog_path

    data = _data_fingerprint(home, exp.data_source)
    if data is None:
        return None
    spec_raw, spec_path = load_config("features", exp.feature_spec)
    catalog = catalog_path()
    parts = {"valuation": exp.options.valuation, "data": data,
             "source": exp.data_source, "legs": [exp.small_column, exp.large_column],
             "horizon": exp.horizon, "before": None if before is None else str(before), "spec": spec_raw,
             "spec_path": str(spec_path), "code": _code_digest(),
             "catalog": [str(catalog), hashlib.sha256(catalog.read_bytes()).hexdigest() if catalog.is_file() else None]}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _code_digest() -> str:
    digest = hashlib.sha256()
    for path in [_PACKAGE / "dataset.py", *sorted((_PACKAGE / "data").rglob("*.py")),
                 *sorted((_PACKAGE / "features").rglob("*.py"))]:
        digest.update(path.relative_to(_PACKAGE).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _data_fingerprint(home: Path, source: str) -> Any:
    if source == "sample":
        from .data.sample import sample_files

        return {"packages": {p: importlib.metadata.version(p) for p in _SAMPLE_PACKAGES},
                "files": {str(path): _stat(path) for path in sample_files()}}
    root = data_dir(home)
    try:
        text = (root / MANIFEST).read_text()
        files = [record.get("file") or f"{key}.parquet" for key, record in json.loads(text).items()]
    except (OSError, ValueError, AttributeError):
        return None  # absent or corrupt: the panel loader reports it
    return {"manifest": text, "files": {name: _stat(root / name) for name in files}}


def _stat(path: Path) -> list[int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _load_stored(home: Path, key: str) -> dict[str, Any] | None:
    try:
        payload = (datasets_dir(home) / f"{key}.pkl").read_bytes()
    except OSError:
        return None
    try:
        return pickle.loads(payload)  # written by _store into this home only
    except Exception:  # truncated by hand or written by an incompatible pandas: rebuild it
        return None


def _store(home: Path, key: str, value: dict[str, Any]) -> None:
    """Write atomically (temp file + rename) and keep the newest :data:`KEEP` entries."""
    directory = datasets_dir(home)
    try:
        atomic_write_bytes(directory / f"{key}.pkl", pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
        entries = sorted(directory.glob("*.pkl"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
        for old in entries[KEEP:]:
            old.unlink(missing_ok=True)
    except OSError:  # a read-only or full home: the dataset is returned all the same, just not reused
        pass
