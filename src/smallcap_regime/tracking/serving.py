"""Finding the model to use, asking it (in process or over REST) for forecasts, and the serve/ui commands."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd

from ..errors import RegimeError
from ..home import artifacts_dir
from . import registry, store


@dataclass(frozen=True)
class ModelChoice:
    uri: str
    version: str
    experiment: str
    note: str


def choose_model(home: Path, model_name: str = "smallcap-regime", version: str | None = None) -> ModelChoice:
    """The champion, or an explicit version; with no champion, the latest version and a note saying why."""
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
            except MlflowException:
                versions = client.search_model_versions(f"name='{model_name}'")
                if not versions:
                    raise RegimeError(f"no model {model_name!r} registered in {store.tracking_label(home)}; run "
                                      "`regime train` (or `regime quickstart`) first") from None
                mv = max(versions, key=lambda v: int(v.version))
                note = (f"no champion yet, using the latest version {mv.version} "
                        f"(gate: {mv.tags.get('gate', 'unknown')})")
    except MlflowException as exc:
        raise RegimeError(f"model {model_name!r} version {version}: {exc.message}") from None
    return ModelChoice(f"models:/{model_name}/{mv.version}", str(mv.version), mv.tags.get("experiment", ""), note)


def predict_local(model_uri: str, features: pd.DataFrame) -> pd.DataFrame:
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(model_uri).predict(features)


def predict_remote(server: str, features: pd.DataFrame, timeout_s: float = 30.0) -> pd.DataFrame:
    """POST the rows to ``<server>/invocations`` (MLflow scoring protocol) and return the predictions."""
    payload = {"dataframe_split": json.loads(features.to_json(orient="split", date_format="iso"))}
    payload["dataframe_split"].pop("index", None)
    url = server.rstrip("/") + "/invocations"
    try:
        response = httpx.post(url, json=payload, timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise RegimeError(f"{url}: {exc.__class__.__name__}: {exc} (is `regime serve` running?)") from None
    if response.status_code != 200:
        raise RegimeError(f"{url}: HTTP {response.status_code}: {response.text[:500]}")
    return pd.DataFrame(response.json()["predictions"])


def serve_command(home: Path, model_uri: str, host: str, port: int) -> list[str]:
    """The ``mlflow models serve`` command line (local env manager: no network needed)."""
    return [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri, "--env-manager", "local",
            "--host", host, "--port", str(port)]


def ui_command(home: Path, host: str, port: int) -> list[str]:
    """The ``mlflow ui`` command line; its store comes from :func:`mlflow_env` (a URL in argv would show its
    password in ``ps``)."""
    return [sys.executable, "-m", "mlflow", "ui", "--default-artifact-root", artifacts_dir(home).as_uri(),
            "--host", host, "--port", str(port)]


def mlflow_env(home: Path) -> dict[str, str]:
    """Environment for MLflow subprocesses: the tracking/registry store (:func:`store.tracking_uri`), no telemetry."""
    env = dict(os.environ)
    # mlflow starts `uvicorn` by name: make this interpreter's scripts dir win even when the venv is not activated
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    uri = store.tracking_uri(home)
    env.update({"MLFLOW_TRACKING_URI": uri, "MLFLOW_REGISTRY_URI": uri, "MLFLOW_BACKEND_STORE_URI": uri,
                "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"})
    return env

