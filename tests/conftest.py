"""Shared fixtures. Real-format excerpts and full real files live in ../shared beside the repo (test data only)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def formats_dir() -> Path:
    path = SHARED / "formats"
    if not path.is_dir():
        pytest.fail(f"real-format excerpts not found at {path} (the repo expects ../shared beside it)")
    return path


@pytest.fixture(scope="session")
def realdata_dir() -> Path:
    path = SHARED / "realdata"
    if not path.is_dir():
        pytest.fail(f"real data files not found at {path} (the repo expects ../shared beside it)")
    return path


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A fresh, empty REGIME_HOME for one test."""
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("REGIME_HOME", str(path))
    return path


def write_tiny_experiment(directory: Path, name: str = "tiny") -> Path:
    """A fast experiment on the offline sample (few trees, refits every 5 years) for MLflow/serving tests."""
    directory.mkdir(parents=True, exist_ok=True)
    for target, seed in (("relative", 11), ("absolute", 12)):
        params = ('objective = "{obj}"\nn_estimators = 25\nlearning_rate = 0.05\nnum_leaves = 5\nmax_depth = 3\n'
                  'min_child_samples = 40\nfeature_fraction = 0.8\nmax_bin = 63\nseed = {seed}\n')
        (directory / f"tiny_{target}.toml").write_text(
            f'target = "{target}"\n\n[regressor]\n' + params.format(obj="regression", seed=seed)
            + "\n[classifier]\n" + params.format(obj="binary", seed=seed + 100))
    path = directory / f"{name}.toml"
    path.write_text(f'''description = "tiny test experiment on the offline sample"
[data]
source = "sample"
[features]
spec = "sample"
horizon_months = 3
[models]
relative = "{directory / 'tiny_relative.toml'}"
absolute = "{directory / 'tiny_absolute.toml'}"
[validation]
oos_start = "1990-01"
refit_every_months = 60
min_train_months = 120
embargo_months = 1
calibration_min_obs = 36
[registry]
primary_metric = "relative.lgbm_cal.brier_skill"
''')
    return path


@pytest.fixture(scope="session")
def tiny_experiment(tmp_path_factory) -> Path:
    return write_tiny_experiment(tmp_path_factory.mktemp("experiments"))


@pytest.fixture(scope="session")
def trained_home(tmp_path_factory, tiny_experiment):
    """A home with one trained, registered (version 1) tiny model. Shared by the MLflow and serving tests."""
    from smallcap_regime.experiment import load_experiment
    from smallcap_regime.tracking.train import train

    path = tmp_path_factory.mktemp("trained") / "home"
    path.mkdir()
    result = train(load_experiment(tiny_experiment), path, force=True)
    return path, result
