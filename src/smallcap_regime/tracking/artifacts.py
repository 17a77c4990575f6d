"""Reading back what training logged: the backtest predictions of a registered model's training run."""

from __future__ import annotations

from pathlib import Path

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
