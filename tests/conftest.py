"""Shared fixtures. Real-format excerpts and full real files live in tests/data (public data, test use only)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def formats_dir() -> Path:
    """Short real excerpts of every source format (docs/formats.md describes each)."""
    return DATA / "formats"


@pytest.fixture(scope="session")
def realdata_dir() -> Path:
    """Full-length real Ken French and FRED files to 2018-12, laid out as the live sites serve them."""
    return DATA / "realdata"


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A fresh, empty REGIME_HOME for one test."""
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("REGIME_HOME", str(path))
    return path


@pytest.fixture(scope="session")
def tiny_experiment(tmp_path_factory) -> Path:
    """A fast experiment on the offline sample (25 trees, refits every 5 years) for MLflow/serving/CLI tests."""
    from helpers import write_experiment

    return write_experiment(tmp_path_factory.mktemp("experiments"), "tiny", seeds=(11, 12))


@pytest.fixture(scope="session")
def trained_home(tmp_path_factory, tiny_experiment):
    """A home with one trained, registered (version 1) tiny model. Shared by the MLflow and serving tests."""
    from smallcap_regime.experiment import load_experiment
    from smallcap_regime.tracking.train import train

    path = tmp_path_factory.mktemp("trained") / "home"
    path.mkdir()
    result = train(load_experiment(tiny_experiment), path, force=True)
    return path, result
