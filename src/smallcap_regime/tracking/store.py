"""Where runs and models go: the home's SQLite store ``<home>/mlflow.db`` with artifacts under ``<home>/mlartifacts``,
or a shared tracking server (or database) named by ``MLFLOW_TRACKING_URI`` (the CLI's ``--tracking-uri`` sets it)."""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from ..home import artifacts_dir, mlflow_uri
from ..locks import home_lock
from ..urls import redact_url

T = TypeVar("T")

#: Experiment tag the MLflow 3 UI reads to pick an experiment's view; without it the UI opens the GenAI (traces)
#: view, which hides the runs table. Values come from the UI's ExperimentKind enum.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING_KIND = "custom_model_development"
#: Experiment tag prefix of the UI's shared views: ``?viewStateShareKey=<key>`` opens the runs table with the view
#: stored in tag ``mlflow.sharedViewState.<key>`` (its columns), since the UI shows no metric column by default.
SHARED_VIEW_TAG = "mlflow.sharedViewState."


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
    """Point MLflow at the tracking store (quietly); returns the tracking URI.

    Called when MLflow is about to be used, never at import: only then are MLflow's progress bars and GitPython's
    missing-git warning switched off (unless the user set those variables).
    """
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
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
    """Id of the MLflow experiment ``name``, created if needed (tagged to open in the UI's model-training view).

    On a tracking server the server places the artifacts (its ``--artifacts-destination``); on a database store
    they go under ``<home>/mlartifacts/<name>``. The first access to a home's SQLite store creates it and runs
    MLflow's schema migrations, which crash when two processes run them at once, so that happens under the home's
    ``mlflow`` lock; on a shared server two machines may still create the experiment at once: the loser uses the
    winner's.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    uri = configure(home)
    with home_lock(home, "mlflow", "the MLflow store"):
        existing = mlflow.get_experiment_by_name(name)
        if existing is not None:
            fail_abandoned(existing.experiment_id)
            return existing.experiment_id
        location = None if is_server(uri) else (artifacts_dir(home) / name).resolve().as_uri()
        try:
            return mlflow.create_experiment(name, artifact_location=location,
                                            tags={EXPERIMENT_KIND_TAG: MODEL_TRAINING_KIND})
        except MlflowException:
            existing = mlflow.get_experiment_by_name(name)
            if existing is None:
                raise
            return existing.experiment_id


def fail_abandoned(experiment_id: str) -> list[str]:
    """Mark the runs a killed ``regime train``/``tune`` left RUNNING in the experiment FAILED, with a note
    (:func:`~smallcap_regime.tracking.stale.fail_abandoned_runs`); every command that opens an experiment calls it."""
    from mlflow import MlflowClient

    from .stale import fail_abandoned_runs

    return fail_abandoned_runs(MlflowClient(), experiment_id)


def model_training_experiments(home: Path, views: dict[str, str] | Callable[[dict[str, str]], dict[str, str]] | None
                               = None) -> list[tuple[str, str]]:
    """``(id, name)`` of the home's experiments, each tagged to open in the UI's model-training view.

    Experiments created before the tag existed (or by plain ``mlflow``) get it here, so ``regime ui`` shows every
    experiment's runs table. ``views`` (share key -> view state JSON, or a function of the experiment's tags
    returning them) are stored as shared views of each one. Runs a killed command left RUNNING are marked FAILED.
    """
    from mlflow import MlflowClient

    configure(home)
    client = MlflowClient()
    out = []
    for experiment in client.search_experiments():
        if experiment.name == "Default":  # MLflow's own, never used by regime
            continue
        chosen = views(experiment.tags) if callable(views) else views
        wanted = {EXPERIMENT_KIND_TAG: MODEL_TRAINING_KIND,
                  **{SHARED_VIEW_TAG + key: state for key, state in (chosen or {}).items()}}
        for key, value in wanted.items():
            if experiment.tags.get(key) != value:
                client.set_experiment_tag(experiment.experiment_id, key, value)
        fail_abandoned(experiment.experiment_id)
        out.append((experiment.experiment_id, experiment.name))
    return out


def git_commit(path: Path | None = None) -> str | None:
    """Commit of the source checkout this package runs from, if any (installed wheels have none)."""
    cwd = path or Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def retry_race(call: Callable[[], T], attempts: int = 3) -> T:
    """``call()``, retried when the tracking store refuses it.

    On a shared tracking server two trainings may write the same row at once (the champion alias, the panel
    dataset of one experiment): the server's read-then-insert then fails for one of them with a unique-key
    violation, and a retry, which finds the row, succeeds.
    """
    from mlflow.exceptions import MlflowException

    for attempt in range(1, attempts):
        try:
            return call()
        except MlflowException:
            time.sleep(0.5 * attempt)
    return call()
