"""The one directory that holds all runtime state: data cache, MLflow store, artifacts, tuning storage."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_HOME = ".regime"


def regime_home(home: str | os.PathLike | None = None) -> Path:
    """Resolve the home dir: explicit argument, else ``$REGIME_HOME``, else ``./.regime``. Creates it."""
    path = Path(home if home is not None else os.environ.get("REGIME_HOME", DEFAULT_HOME)).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _subdir(home: Path, name: str) -> Path:
    path = home / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir(home: Path) -> Path:
    """``<home>/data``: Parquet cache and manifest."""
    return _subdir(home, "data")


def runs_dir(home: Path) -> Path:
    """``<home>/runs``: backtest predictions and fold metrics written by ``regime backtest``."""
    return _subdir(home, "runs")


def artifacts_dir(home: Path) -> Path:
    """``<home>/mlartifacts``: MLflow artifact root."""
    return _subdir(home, "mlartifacts")


def tuning_dir(home: Path) -> Path:
    """``<home>/tuning``: Optuna journal storage."""
    return _subdir(home, "tuning")


def mlflow_uri(home: Path) -> str:
    """SQLite tracking URI inside the home dir."""
    return f"sqlite:///{home / 'mlflow.db'}"
