"""Reading back what training logged: the backtest predictions of a registered model's training run."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from urllib.parse import unquote, urlparse

import pandas as pd

from ..errors import RegimeError
from ..values import ModelChoice
from . import store

#: Where :func:`~smallcap_regime.tracking.train.train` logs the backtest outputs, in its child run ``backtest``.
PREDICTIONS = "backtest/predictions.parquet"


def backtest_predictions(home: Path, choice: ModelChoice) -> pd.DataFrame:
    """The walk-forward predictions logged by the training run that registered ``choice``.

    Raises
    ------
    RegimeError
        The model version's run has no ``backtest`` child run holding the predictions.
    """
    local = _local_predictions(home, choice)
    if local is not None:
        return pd.read_parquet(local)
    import mlflow
    from mlflow import MlflowClient

    store.configure(home)
    client = MlflowClient()
    name = choice.uri.removeprefix("models:/").rsplit("/", 1)[0]
    version = client.get_model_version(name, choice.version)
    # the run that registered the version (an identical retrain reuses it and only notes its own run)
    parent = client.get_run(str(version.tags.get("run_id") or version.run_id))
    children = client.search_runs([parent.info.experiment_id],
                                  f"tags.mlflow.parentRunId = '{parent.info.run_id}' "
                                  "and tags.mlflow.runName = 'backtest'")
    if not children:
        raise RegimeError(f"{choice.uri}: its training run {parent.info.run_id} has no backtest child run; "
                          "retrain it with `regime train`")
    path = mlflow.artifacts.download_artifacts(run_id=children[0].info.run_id, artifact_path=PREDICTIONS)
    return pd.read_parquet(path)


def _local_predictions(home: Path, choice: ModelChoice) -> Path | None:
    """The predictions file found through the home's SQLite store read directly (the same run MLflow's client
    finds: the version's training run, its latest active child run named ``backtest``), or None when that read
    does not answer (another store, schema or artifact location): the caller then asks MLflow."""
    connection = store.read_only_database(home)
    if connection is None:
        return None
    name = choice.uri.removeprefix("models:/").rsplit("/", 1)[0]
    try:
        with closing(connection) as db:
            version = db.execute("SELECT run_id FROM model_versions WHERE workspace = 'default' AND name = ? AND "
                                 "version = ?", (name, int(choice.version))).fetchone()
            tag = db.execute("SELECT value FROM model_version_tags WHERE workspace = 'default' AND name = ? AND "
                             "version = ? AND key = 'run_id'", (name, int(choice.version))).fetchone()
            if version is None:
                return None
            run_id = (tag[0] if tag else None) or version[0]
            child = db.execute(
                "SELECT r.artifact_uri FROM runs r JOIN runs p ON p.run_uuid = ? AND r.experiment_id = p.experiment_id "
                "JOIN tags t ON t.run_uuid = r.run_uuid AND t.key = 'mlflow.parentRunId' AND t.value = ? "
                "JOIN tags n ON n.run_uuid = r.run_uuid AND n.key = 'mlflow.runName' AND n.value = 'backtest' "
                "WHERE r.lifecycle_stage = 'active' ORDER BY r.start_time DESC, r.run_uuid LIMIT 1",
                (run_id, run_id)).fetchone()
    except (sqlite3.Error, ValueError):
        return None
    if child is None or not str(child[0]).startswith("file://"):
        return None
    path = Path(unquote(urlparse(child[0]).path)) / PREDICTIONS
    return path if path.is_file() else None
