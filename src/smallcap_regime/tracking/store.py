"""Where runs and models go: the home's SQLite store ``<home>/mlflow.db`` with artifacts under ``<home>/mlartifacts``,
or a shared tracking server (or database) named by ``MLFLOW_TRACKING_URI`` (the CLI's ``--tracking-uri`` sets it)."""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

from ..home import artifacts_dir, mlflow_uri
from ..urls import redact_url

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")


def tracking_uri(home: Path) -> str:
    """``$MLFLOW_TRACKING_URI`` (a team's tracking server, e.g. ``http://mlflow.internal:5000``), else the home's
    SQLite store. The model registry is always the same store as the runs."""
    return os.environ.get("MLFLOW_TRACKING_URI") or mlflow_uri(home)


def is_server(uri: str) -> bool:
    """Whether ``uri`` is a tracking server (which stores artifacts itself) rather than a database."""
    return uri.split("://", 1)[0] in ("http", "https")


def tracking_label(home: Path) -> str:
    """The tracking URI for messages (password removed)."""
    return redact_url(tracking_uri(home))


def configure(home: Path) -> str:
    """Point MLflow at the tracking store (quietly); returns the tracking URI."""
    import mlflow

    for name in ("mlflow", "alembic", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)
    uri = tracking_uri(home)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    if uri == mlflow_uri(home):
        # MLflow exports what it is given to the environment; a home's store is not the user's choice, and left
        # there it would win over the next home this process configures
        for var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
            os.environ.pop(var, None)
    return uri


def experiment_id(home: Path, name: str) -> str:
    """Id of the MLflow experiment ``name``, created if needed.

    On a tracking server the server places the artifacts (its ``--artifacts-destination``); on a database store
    they go under ``<home>/mlartifacts/<name>``. Two processes may create it at once: the loser uses the winner's.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    uri = configure(home)
    existing = mlflow.get_experiment_by_name(name)
    if existing is not None:
        return existing.experiment_id
    location = None if is_server(uri) else (artifacts_dir(home) / name).resolve().as_uri()
    try:
        return mlflow.create_experiment(name, artifact_location=location)
    except MlflowException:
        existing = mlflow.get_experiment_by_name(name)
        if existing is None:
            raise
        return existing.experiment_id


def git_commit(path: Path | None = None) -> str | None:
    """Commit of the source checkout this package runs from, if any (installed wheels have none)."""
    cwd = path or Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None
