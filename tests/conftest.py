"""Shared fixtures. Real-format excerpts and full real files live in tests/data (public data, test use only)."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
POSTGRES_URL_VAR = "REGIME_TEST_POSTGRES_URL"

#: Fixtures that train and register a model through MLflow or start a database server: a test using one (directly or
#: through another fixture) belongs to the slow end-to-end layer whether or not it is marked itself.
SLOW_FIXTURES = {"trained_home", "postgres_server", "postgres_db", "mlflow_schema"}


def pytest_collection_modifyitems(config, items) -> None:
    """Mark ``slow`` every test that uses a :data:`SLOW_FIXTURES` fixture, so ``pytest -m "not slow"`` (the fast
    layer: no MLflow training, no server processes) cannot pull one in by accident."""
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


# before any (session) fixture: the tests never talk to a tracking server the developer's shell points at
for _var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
    os.environ.pop(_var, None)


@pytest.fixture(scope="session")
def formats_dir() -> Path:
    """Short real excerpts of every source format (docs/formats.md describes each)."""
    return DATA / "formats"


@pytest.fixture(scope="session")
def realdata_dir() -> Path:
    """Full-length real Ken French and FRED files to 2018-12, laid out as the live sites serve them."""
    return DATA / "realdata"


@pytest.fixture(autouse=True)
def _own_tracking_store(monkeypatch) -> None:
    """No test inherits a tracking URI from an earlier one (``mlflow.set_tracking_uri`` exports it), nor the
    serving flag MLflow's scoring app sets in ``os.environ`` when a test builds it in process (the model would then
    answer every later in-process call, and every subprocess, with records instead of a frame)."""
    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "_MLFLOW_IS_IN_SERVING_ENVIRONMENT"):
        monkeypatch.delenv(var, raising=False)


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


@pytest.fixture(scope="session")
def postgres_server():
    """URL (with password) of a PostgreSQL server for the team tests, as a superuser.

    ``$REGIME_TEST_POSTGRES_URL`` when set (CI starts a cluster and sets it: then a dead server fails the tests,
    never skips them); else a throwaway cluster started here when PostgreSQL's binaries are installed (stopped at the
    end of the session); else the tests that need it skip with the reason.
    """
    from pgcluster import ClusterError, start, stop

    if os.environ.get(POSTGRES_URL_VAR):
        yield os.environ[POSTGRES_URL_VAR]
        return
    # not under pytest's tmp dirs: as root the cluster runs as the postgres user, who cannot enter those (0700)
    base = Path(tempfile.mkdtemp(prefix="regime-pg-"))
    try:
        url = start(base)
    except ClusterError as exc:
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"PostgreSQL tests: cannot start a local server ({exc}); install PostgreSQL or set "
                    f"{POSTGRES_URL_VAR}=postgresql://user:password@host:port/db")
    try:
        yield url
    finally:
        stop(base)
        shutil.rmtree(base, ignore_errors=True)


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


@pytest.fixture
def postgres_db(postgres_server) -> str:
    """URL of a fresh, empty database on :func:`postgres_server`, dropped after the test."""
    import psycopg

    name = f"regime_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield _with_database(postgres_server, name)
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
