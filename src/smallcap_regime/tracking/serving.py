"""Finding the model to use, asking it (in process or over REST) for forecasts, and the serve/ui commands."""

from __future__ import annotations

import errno
import json
import math
import os
import socket
import sqlite3
import sys
from contextlib import closing
from pathlib import Path

import httpx
import pandas as pd

from ..errors import RegimeError, StoreUnavailable
from ..home import artifacts_dir
from ..urls import redact_url, scrub
from ..values import ModelChoice
from . import registry, store

#: Registered versions found by :func:`_read_local_registry`: model URI -> (artifact location, version). Lets
#: :func:`predict_local` load the model without MLflow's SQL store, whose import alone (SQLAlchemy, Alembic) costs
#: more than a forecast's own work.
_LOCATED: dict[str, tuple[str, str]] = {}


def _read_local_registry(home: Path, model_name: str, version: str | None) -> ModelChoice | None:
    """The champion (or ``version``) read from the home's SQLite store with the standard library, read-only.

    Only the plain case: a local SQLite store holding that alias or version, READY. Anything else (a tracking
    server, no champion, another schema, a locked or missing file) returns None, and MLflow's client answers with
    its own messages.
    """
    connection = store.read_only_database(home)
    if connection is None:
        return None
    try:
        with closing(connection) as db:
            if version is None:
                found = db.execute("SELECT version FROM registered_model_aliases WHERE workspace = 'default' AND "
                                   "name = ? AND alias = ?", (model_name, registry.CHAMPION)).fetchone()
                if found is None:
                    return None
                number = int(found[0])
            else:
                number = int(version)
            row = db.execute("SELECT storage_location, source, status FROM model_versions WHERE workspace = "
                             "'default' AND name = ? AND version = ?", (model_name, number)).fetchone()
            if row is None or row[2] != "READY" or not (row[0] or "").startswith("file://"):
                return None
            tags = dict(db.execute("SELECT key, value FROM model_version_tags WHERE workspace = 'default' AND "
                                   "name = ? AND version = ?", (model_name, number)).fetchall())
    except (sqlite3.Error, ValueError):
        return None
    note = f"version {version} as requested" if version else f"champion (version {number})"
    choice = ModelChoice(f"models:/{model_name}/{number}", str(number), tags.get("experiment", ""), note)
    _LOCATED[choice.uri] = (row[0], str(number))
    return choice


def choose_model(home: Path, model_name: str = "smallcap-regime", version: str | None = None) -> ModelChoice:
    """The champion, or an explicit version; with no champion, the latest version and a note saying why."""
    if version is None or version.isdigit():
        local = _read_local_registry(home, model_name, version)
        if local is not None:
            return local
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    store.configure(home)
    client = MlflowClient()
    try:
        if version:
            mv = client.get_model_version(model_name, version)
            note = f"version {version} as requested"
        else:
            try:
                mv = client.get_model_version_by_alias(model_name, registry.CHAMPION)
                note = f"champion (version {mv.version})"
            except MlflowException as exc:
                if store.lost_store(exc) is not None:
                    raise
                versions = client.search_model_versions(f"name='{model_name}'")
                if not versions:
                    raise RegimeError(f"no model {model_name!r} registered in {store.tracking_label(home)}; run "
                                      "`regime train` (or `regime quickstart`) first") from None
                mv = max(versions, key=lambda v: int(v.version))
                note = (f"no champion yet, using the latest version {mv.version} "
                        f"(gate: {mv.tags.get('gate', 'unknown')})")
    except MlflowException as exc:
        lost = store.lost_store(exc)  # one line naming the store, never MLflow's message with its password
        raise lost or RegimeError(f"model {model_name!r} version {version}: "
                                  f"{scrub(exc.message, store.tracking_uri(home))}") from None
    return ModelChoice(f"models:/{model_name}/{mv.version}", str(mv.version), mv.tags.get("experiment", ""), note)


def served_model(home: Path, model_name: str = "smallcap-regime", version: str | None = None) -> ModelChoice:
    """The model ``regime serve`` serves: ``version`` if given, else the champion; no fallback to the latest.

    Raises
    ------
    RegimeError
        No such version, or no champion (the message says how to serve a version or make one champion).
    """
    choice = choose_model(home, model_name, version)
    if version is None and not choice.note.startswith(registry.CHAMPION):
        raise RegimeError(f"no champion to serve ({choice.note}); serve version {choice.version} explicitly "
                          f"(`regime serve --version {choice.version}`), or make one champion with "
                          "`regime train --force`")
    return choice


def predict_local(model_uri: str, features: pd.DataFrame) -> pd.DataFrame:
    import mlflow.pyfunc

    # the requirement check (importlib metadata of every installed package, ~1 s) is for the served model: here the
    # model is loaded by the package that logged it
    if model_uri in _LOCATED:  # found in the home's registry file: load its artifacts directly, no SQL store
        location, version = _LOCATED[model_uri]
        model = mlflow.pyfunc.load_model(location, suppress_warnings=True)
        # what the registered_model_meta file MLflow writes for a models:/ download would have said
        model.unwrap_python_model().version = version
    else:
        model = mlflow.pyfunc.load_model(model_uri, suppress_warnings=True)
    out = model.predict(features)
    # under MLflow's serving flag (exported by a scoring server's process) the model answers records: same rows
    return out if isinstance(out, pd.DataFrame) else pd.DataFrame(out, index=features.index)


def predict_remote(server: str, features: pd.DataFrame, timeout_s: float = 30.0) -> pd.DataFrame:
    """POST the rows to ``<server>/invocations`` (MLflow scoring protocol) and return the predictions.

    Floats go on the wire at full precision (Python's shortest repr that reads back to the same double; pandas'
    ``to_json`` would round to 10 digits), so the server scores exactly the row an in-process call would.
    NaN is sent as null.
    """
    rows = [[None if isinstance(v, float) and math.isnan(v) else v for v in row]
            for row in features.astype("float64").to_numpy().tolist()]
    try:
        body = json.dumps({"dataframe_split": {"columns": list(features.columns), "data": rows}}, allow_nan=False)
    except ValueError:
        raise RegimeError("infinite feature value: the row cannot be sent (JSON has no infinity)") from None
    url = server.rstrip("/") + "/invocations"
    shown = redact_url(url)
    try:
        response = httpx.post(url, content=body, headers={"Content-Type": "application/json"}, timeout=timeout_s)
    except httpx.TimeoutException:
        raise StoreUnavailable(f"the model server {shown} did not answer within {timeout_s:g} s") from None
    except httpx.HTTPError as exc:  # refused, DNS, reset: say so, it is not the model refusing the row
        reason = "connection refused" if "refused" in str(exc).lower() else scrub(f"{type(exc).__name__}: {exc}", url)
        raise StoreUnavailable(f"the model server {shown} cannot be reached ({reason}); is `regime serve` "
                               "running there?") from None
    if response.status_code != 200:
        raise RegimeError(f"{shown}: HTTP {response.status_code}: {response.text[:500]}")
    return pd.DataFrame(response.json()["predictions"])


def serve_command(home: Path, model_uri: str, host: str, port: int) -> list[str]:
    """The server command line: MLflow's scoring app (what ``mlflow models serve --env-manager local`` runs) behind
    the request guard of :mod:`.scoring` (content type, body size, nesting, non-numeric values)."""
    return [sys.executable, "-m", "smallcap_regime.tracking.scoring", model_uri, "--host", host, "--port", str(port)]


def ui_command(home: Path, host: str, port: int) -> list[str]:
    """``mlflow ui`` with one worker (a reviewer's browser needs no more; default 4). Its store comes from
    :func:`mlflow_env`: a URL in argv would show its password in ``ps``."""
    return [sys.executable, "-m", "mlflow", "ui", "--default-artifact-root", artifacts_dir(home).as_uri(),
            "--host", host, "--port", str(port), "--workers", "1"]


#: Share key of the runs-table view ``regime ui`` links to (headline metric columns).
HEADLINE_VIEW = "regime-headline"


def ui_links(home: Path, host: str, port: int) -> list[tuple[str, str]]:
    """``(experiment, url)`` opening each experiment's runs table in the UI's model-training view.

    MLflow 3 opens experiments in its GenAI (traces) view unless the experiment is tagged as model development
    (:func:`store.model_training_experiments` makes sure it is); ``workflowType=machine_learning`` selects the
    matching navigation, and the shared view :data:`HEADLINE_VIEW` shows the headline metrics as columns.
    """
    from .review import experiment_view

    experiments = store.model_training_experiments(home, lambda tags: {HEADLINE_VIEW: experiment_view(tags)})
    return [(name, f"http://{host}:{port}/#/experiments/{exp_id}/runs?viewStateShareKey={HEADLINE_VIEW}"
                   "&workflowType=machine_learning") for exp_id, name in experiments]


def check_port_free(host: str, port: int) -> None:
    """Raise RegimeError (one line) if ``host:port`` cannot be bound, e.g. another server holds it."""
    with socket.socket() as probe:
        # as uvicorn does: connections of a stopped server lingering in TIME_WAIT must not count as busy
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            reason = "is already in use" if exc.errno == errno.EADDRINUSE else f"cannot be bound ({exc.strerror})"
            raise RegimeError(f"port {port} on {host} {reason}; stop the other server or choose another port") from None


def mlflow_env(home: Path, *, jobs: bool = True) -> dict[str, str]:
    """Environment for MLflow subprocesses: the tracking/registry store (:func:`store.tracking_uri`), no telemetry.

    ``jobs=False`` switches off the MLflow server's job runner (huey consumer processes for GenAI jobs the UI
    never starts here): the UI then runs as two processes.
    """
    env = dict(os.environ)
    # mlflow starts `uvicorn` by name: make this interpreter's scripts dir win even when the venv is not activated
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    uri = store.tracking_uri(home)
    env.update({"MLFLOW_TRACKING_URI": uri, "MLFLOW_REGISTRY_URI": uri, "MLFLOW_BACKEND_STORE_URI": uri,
                "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"})
    if not jobs:
        env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    return env


def exec_server(command: list[str], env: dict[str, str]) -> None:
    """Replace this process with the server (no idle parent: SIGTERM and Ctrl-C reach the server itself)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe(command[0], command, env)

