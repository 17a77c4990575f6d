"""Where runs and models go: the home's SQLite store ``<home>/mlflow.db`` with artifacts under ``<home>/mlartifacts``,
or a shared tracking server (or database) named by ``MLFLOW_TRACKING_URI`` (the CLI's ``--tracking-uri`` sets it)."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from ..errors import StoreUnavailable
from ..home import artifacts_dir, mlflow_uri
from ..locks import home_lock
from ..urls import redact_url, scrub

T = TypeVar("T")

#: Experiment tag the MLflow 3 UI reads to pick an experiment's view; without it the UI opens the GenAI (traces)
#: view, which hides the runs table. Values come from the UI's ExperimentKind enum.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING_KIND = "custom_model_development"
#: Experiment tag prefix of the UI's shared views: ``?viewStateShareKey=<key>`` opens the runs table with the view
#: stored in tag ``mlflow.sharedViewState.<key>`` (its columns), since the UI shows no metric column by default.
SHARED_VIEW_TAG = "mlflow.sharedViewState."
#: MLflow's HTTP budget towards a tracking server, unless the environment sets these variables. MLflow's own
#: defaults (120 s per request, 7 retries backing off 2, 4, ... 128 s) let one lost server hold a command for about
#: 13 minutes across the calls a training makes; with these a refused connection fails after ~10 s per request (3
#: retries, 1 + 2 + 4 s of backoff) and a hung server after ~70 s (MLflow retries every method, reads included).
HTTP_BUDGET = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "15", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
               "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5"}
#: Attempts MLflow makes to open a database tracking store (see :func:`_bound_database_retries`).
DB_ATTEMPTS = 6
#: Runs a command left RUNNING because the store went away, per store: ``<home>/unfinished-runs.json``.
UNFINISHED_RUNS = "unfinished-runs.json"
log = logging.getLogger("smallcap_regime.tracking")
#: The home and tracking URI this process last configured (where a lost store's unfinished runs are noted).
_configured: tuple[Path, str] | None = None


def tracking_uri(home: Path) -> str:
    """``$MLFLOW_TRACKING_URI`` (a team's tracking server, e.g. ``http://mlflow.internal:5000``), else the home's
    SQLite store. The model registry is always the same store as the runs."""
    return os.environ.get("MLFLOW_TRACKING_URI") or mlflow_uri(home)


def read_only_database(home: Path) -> sqlite3.Connection | None:
    """A read-only standard-library connection to the home's SQLite store when it is the store in use, else None.

    For the lookups a forecast makes (champion, its artifacts): importing MLflow's SQL store (SQLAlchemy, Alembic)
    costs more than the forecast itself. Callers fall back to MLflow's client whenever a query does not answer.
    """
    uri = tracking_uri(home)
    if not uri.startswith("sqlite:///"):
        return None
    path = Path(uri.removeprefix("sqlite:///"))
    if not path.is_file():
        return None
    try:
        return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return None


def is_server(uri: str) -> bool:
    """Whether ``uri`` is a tracking server (which stores artifacts itself) rather than a database."""
    return uri.split("://", 1)[0] in ("http", "https")


def is_local(uri: str) -> bool:
    """Whether ``uri`` is a store on this machine (SQLite file, plain path)."""
    return uri.split("://", 1)[0] in ("sqlite", "file") or "://" not in uri


def tracking_label(home: Path) -> str:
    """The tracking URI for messages (password removed)."""
    return redact_url(tracking_uri(home))


def configure(home: Path) -> str:
    """Point MLflow at the tracking store (quietly); returns the tracking URI.

    Called when MLflow is about to be used, never at import: only then are MLflow's progress bars and GitPython's
    missing-git warning switched off (unless the user set those variables).
    """
    global _configured
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    for var, value in HTTP_BUDGET.items():
        os.environ.setdefault(var, value)
    import mlflow

    for name in ("mlflow", "alembic", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # its engine retries log each failed attempt with the driver's message; the outage is reported once, by us
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.ERROR)
    _bound_database_retries()
    uri = tracking_uri(home)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    if uri == mlflow_uri(home):
        # MLflow exports what it is given to the environment; a home's store is not the user's choice, and left
        # there it would win over the next home this process configures
        for var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
            os.environ.pop(var, None)
    first = _configured != (home, uri)
    _configured = (home, uri)
    if first:
        fail_unfinished_runs(home, uri)
    return uri


def _bound_database_retries() -> None:
    """Cap MLflow's attempts to open a database store (``$REGIME_TRACKING_DB_ATTEMPTS``, default 6: ~6 s of
    backoff). MLflow tries 10 times, doubling its waits, so a database that is down holds a command for ~100 s
    before the error; it reads the cap from a module constant on each attempt (there is no variable for it)."""
    from mlflow.store.db import utils

    from ..env import env_number

    utils.MAX_RETRY_COUNT = max(1, int(env_number("REGIME_TRACKING_DB_ATTEMPTS", DB_ATTEMPTS, integer=True)))


def lost_store(exc: BaseException) -> StoreUnavailable | None:
    """A one-line error naming the tracking store (password removed) when ``exc`` says it cannot be reached, else
    None.

    MLflow reports a tracking server it could not reach, after its retries, as ``MlflowException("API request to
    <url> failed with ...")``; a database store as SQLAlchemy's ``OperationalError`` (possibly wrapped).
    """
    from mlflow.exceptions import MlflowException

    chain, seen = [], set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or current.__context__
    uri = _configured[1] if _configured else os.environ.get("MLFLOW_TRACKING_URI", "")
    for error in chain:
        text = str(error.message if isinstance(error, MlflowException) else error)
        if isinstance(error, MlflowException) and text.startswith("API request to ") and " failed with " in text:
            reason = "timed out" if "timeout exception" in text else (
                "connection refused" if "refused" in text.lower() else "no answer")
            budget = (f"{os.environ.get('MLFLOW_HTTP_REQUEST_TIMEOUT')} s per request, "
                      f"{os.environ.get('MLFLOW_HTTP_REQUEST_MAX_RETRIES')} retries")
            return StoreUnavailable(f"the tracking server {redact_url(uri)} cannot be reached ({reason}, after "
                                    f"MLflow's retries: {budget}; MLFLOW_HTTP_REQUEST_TIMEOUT / _MAX_RETRIES set "
                                    "the budget)")
        if (type(error).__name__ in ("OperationalError", "InterfaceError") and "sqlalchemy" in type(error).__module__
                and not is_local(uri)):  # a local SQLite store is not lost: the error is another database's
            first = scrub(text.strip().splitlines()[0] if text.strip() else "", uri)
            return StoreUnavailable(f"the tracking store {redact_url(uri)} cannot be reached ({first[:200]})")
    return None


def open_runs_of(exc: BaseException) -> list[str]:
    """Ids of the MLflow runs that were being closed when ``exc`` (or an exception it interrupted) was raised.

    A lost store makes every ``with mlflow.start_run()`` on the way out fail to mark its run FAILED; each of those
    attempts is a frame of MLflow's ``ActiveRun.__exit__`` in the chain of tracebacks, holding its run.
    """
    from mlflow import ActiveRun

    ids: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        tb = current.__traceback__
        while tb is not None:
            run = tb.tb_frame.f_locals.get("self")
            if isinstance(run, ActiveRun) and run.info.run_id not in ids:
                ids.append(run.info.run_id)
            tb = tb.tb_next
        current = current.__cause__ or current.__context__
    return ids


def _unfinished_path(home: Path) -> Path:
    return home / UNFINISHED_RUNS


def _read_unfinished(home: Path) -> dict[str, list[str]]:
    try:
        return dict(json.loads(_unfinished_path(home).read_text()))
    except (OSError, ValueError, TypeError):
        return {}


def note_unfinished_runs(exc: BaseException) -> list[str]:
    """Remember the runs ``exc`` left RUNNING (store lost) in the configured home, for the next command to fail."""
    from ..data.cache import atomic_write_bytes

    ids = open_runs_of(exc)
    if not ids or _configured is None:
        return ids
    home, uri = _configured
    with home_lock(home, "mlflow", "the MLflow store"):
        pending = _read_unfinished(home)
        key = redact_url(uri)  # the file never holds a password; the store is found again by its redacted URI
        pending[key] = sorted({*pending.get(key, []), *ids})
        atomic_write_bytes(_unfinished_path(home), json.dumps(pending, indent=1).encode())
    return ids


def fail_unfinished_runs(home: Path, uri: str) -> list[str]:
    """Mark FAILED the runs an earlier command left RUNNING on this store when it was lost; returns their ids.

    Quiet when the store is still unreachable: the runs stay noted, and the command's own use of the store reports
    the outage.
    """
    key = redact_url(uri)
    pending = _read_unfinished(home).get(key)
    if not pending:
        return []
    from mlflow import MlflowClient
    from mlflow.entities import RunStatus
    from mlflow.exceptions import MlflowException

    from ..data.cache import atomic_write_bytes

    client = MlflowClient(tracking_uri=uri)
    done: list[str] = []
    for run_id in pending:
        try:
            if client.get_run(run_id).info.status == "RUNNING":
                client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED))
                log.warning("run %s was left RUNNING when the tracking store was lost; marked FAILED", run_id)
        except MlflowException as exc:
            if lost_store(exc) is not None:
                return done
            # no such run (deleted meanwhile): nothing to mark
        except Exception as exc:  # noqa: BLE001 - a database store's driver errors: still unreachable
            if lost_store(exc) is not None:
                return done
            raise
        done.append(run_id)
    with home_lock(home, "mlflow", "the MLflow store"):
        pending_now = _read_unfinished(home)
        left = [r for r in pending_now.get(key, []) if r not in done]
        if left:
            pending_now[key] = left
        else:
            pending_now.pop(key, None)
        atomic_write_bytes(_unfinished_path(home), json.dumps(pending_now, indent=1).encode())
    return done


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
        except MlflowException as exc:
            if lost_store(exc) is not None:  # MLflow has spent the store's retry budget already
                raise
            time.sleep(0.5 * attempt)
    return call()
