"""The fast paths of a forecast give what the slow ones give: stored datasets, the direct registry read.

- ``regime predict`` and ``regime history`` import no tuning code (optuna) and no MLflow SQL store, checked in a
  fresh interpreter;
- a dataset stored under ``<home>/datasets`` is reused only while its data, spec and experiment are unchanged;
- the in-process forecast and the history read through the registry file equal MLflow's own reads;
- the ``drivers`` inference param skips only the drivers.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys

import pandas as pd
import pandas.testing as pdt
import pytest

from smallcap_regime.dataset import build_dataset, dataset_key, datasets_dir
from smallcap_regime.experiment import load_experiment
from smallcap_regime.home import data_dir


@pytest.mark.parametrize("command", [["predict"], ["history", "--from", "2008-01", "--to", "2009-12"]])
def test_predict_and_history_import_neither_optuna_nor_the_tuning_package_nor_the_sql_store(
        command, trained_home, tiny_experiment):
    home, result = trained_home
    code = ("import json, sys\nfrom smallcap_regime.cli import main\n"
            "try:\n    main()\nexcept SystemExit as exc:\n    code = exc.code\n"
            "print(json.dumps([code, [m for m in ('optuna', 'smallcap_regime.tuning', 'sqlalchemy', 'alembic') "
            "if m in sys.modules]]))")
    env = {**os.environ, "COLUMNS": "80"}
    env.pop("MLFLOW_TRACKING_URI", None)
    run = subprocess.run([sys.executable, "-c", code, *command, "--home", str(home),
                          "--experiment", str(tiny_experiment)], capture_output=True,
                         text=True, env=env, timeout=300)
    exit_code, loaded = json.loads(run.stdout.strip().splitlines()[-1])
    assert exit_code in (0, None), run.stdout + run.stderr
    assert "models:/smallcap-regime/1" in run.stdout
    assert loaded == []


def test_in_process_forecast_from_the_registry_file_equals_mlflow_models_uri(trained_home):
    import mlflow.pyfunc

    from smallcap_regime.tracking import serving, store

    home, result = trained_home
    choice = serving.choose_model(home, "smallcap-regime")
    assert choice.uri in serving._LOCATED  # the direct read answered
    rows = result.backtest.features.tail(3)
    fast = serving.predict_local(choice.uri, rows)
    store.configure(home)
    slow = mlflow.pyfunc.load_model(choice.uri).predict(rows)
    pdt.assert_frame_equal(fast, slow)
    assert fast["model_version"].tolist() == [choice.version] * 3


def test_a_stored_dataset_is_reused_and_equals_a_fresh_build(tmp_path):
    home = tmp_path / "home"
    exp = load_experiment("quickstart")
    first = build_dataset(exp, home=home)
    stored = list(datasets_dir(home).glob("*.pkl"))
    assert len(stored) == 1
    again = build_dataset(exp, home=home)
    fresh = build_dataset(exp)  # no home: built from the sample
    for data in (first, again):
        pdt.assert_frame_equal(data.features, fresh.features)
        pdt.assert_frame_equal(data.targets, fresh.targets)
        pdt.assert_frame_equal(data.panel.frame, fresh.panel.frame)
        assert data.panel.vintages == fresh.panel.vintages and data.panel.notes == fresh.panel.notes
    cut = build_dataset(exp, home=home, before=pd.Timestamp("2000-01-01"))  # the cut is part of the key
    assert cut.features.index[-1] < pd.Timestamp("2000-01-01")
    assert len(list(datasets_dir(home).glob("*.pkl"))) == 2


def test_a_changed_spec_gives_another_dataset(tmp_path):
    from smallcap_regime.configs import resolve_config

    home = tmp_path / "home"
    exp = load_experiment("quickstart")
    build_dataset(exp, home=home)
    spec = tmp_path / "spec.toml"
    original = resolve_config("features", exp.feature_spec).read_text()
    spec.write_text(original)
    changed = dataclasses.replace(exp, feature_spec=str(spec))
    same_text = build_dataset(changed, home=home)
    spec.write_text(original.replace("[credit]\n", "[credit]\nenabled = false\n", 1))
    assert "enabled = false" in spec.read_text()
    edited = build_dataset(changed, home=home)
    assert len(list(datasets_dir(home).glob("*.pkl"))) == 3  # quickstart's, the copy's path, the edited copy
    assert set(edited.features.columns) < set(same_text.features.columns)
    pdt.assert_frame_equal(edited.features, build_dataset(changed).features)


def test_changed_live_data_gives_another_key(tmp_path, realdata_dir):
    home = tmp_path / "home"
    exp = load_experiment("live")
    args = (exp, None)
    assert dataset_key(home, *args) is None  # nothing pulled: the panel loader says what is missing
    root = data_dir(home)
    (root / "french").mkdir(parents=True)
    vintage = root / "french" / "x.0123456789ab.parquet"
    pd.DataFrame({"v": [1.0]}).to_parquet(vintage)
    manifest = {"french/x": {"key": "french/x", "source": "french", "url": "u", "fetched_at": "t", "sha256": "a",
                             "first": None, "last": None, "rows": 1, "file": "french/x.0123456789ab.parquet"}}
    (root / "manifest.json").write_text(json.dumps(manifest))
    before = dataset_key(home, *args)
    assert before and dataset_key(home, *args) == before
    pd.DataFrame({"v": [1.0, 2.0]}).to_parquet(vintage)  # the file changed under the same manifest
    rewritten = dataset_key(home, *args)
    assert rewritten != before
    manifest["french/x"]["sha256"] = "b"  # a new vintage recorded
    (root / "manifest.json").write_text(json.dumps(manifest))
    assert dataset_key(home, *args) not in (before, rewritten)
    shutil.rmtree(root)
    assert dataset_key(home, *args) is None


def test_drivers_param_skips_only_the_drivers_and_is_checked(trained_home):
    import mlflow.pyfunc
    import pytest
    from mlflow.exceptions import MlflowException

    from smallcap_regime.tracking import store

    home, result = trained_home
    store.configure(home)
    model = mlflow.pyfunc.load_model(result.model_uri)
    assert [p.name for p in model.metadata.get_params_schema().params] == ["drivers"]
    rows = result.backtest.features.tail(4)
    default = model.predict(rows)
    without = model.predict(rows, params={"drivers": 0})
    drivers = [c for c in default.columns if "_drivers_" in c]
    assert (default[drivers] != "").any().any()  # the tiny model has drivers to skip
    assert (without[drivers] == "").all().all()
    pdt.assert_frame_equal(without.drop(columns=drivers), default.drop(columns=drivers))
    one = model.predict(rows, params={"drivers": 1})  # the first of the default three
    for column in drivers:
        assert one[column].tolist() == default[column].str.split("; ").str[0].tolist()
    with pytest.raises(MlflowException, match="params drivers = -2: give the number of drivers per row"):
        model.predict(rows, params={"drivers": -2})
    # a batch above DRIVERS_MAX_ROWS gets none unless it asks; the forecasts do not depend on the batch size
    from smallcap_regime.tracking.pyfunc import DRIVERS_MAX_ROWS

    batch = result.backtest.features.dropna(subset=result.model.required).tail(DRIVERS_MAX_ROWS + 1)
    big = model.predict(batch)
    assert (big[drivers] == "").all().all()
    asked = model.predict(batch, params={"drivers": 3})
    assert (asked[drivers] != "").any().any()
    pdt.assert_frame_equal(big.drop(columns=drivers), asked.drop(columns=drivers))
    assert model.predict(batch.tail(DRIVERS_MAX_ROWS))[drivers].ne("").any().any()  # 100 rows: the default three


def test_the_guarded_app_answers_a_batch_without_drivers_like_in_process(trained_home):
    from starlette.testclient import TestClient

    from smallcap_regime.tracking import store
    from smallcap_regime.tracking.scoring import build_app

    home, result = trained_home
    store.configure(home)
    rows = result.backtest.features.dropna(subset=result.model.required).tail(50)
    body = {"dataframe_split": {"columns": list(rows.columns), "data": rows.to_numpy().tolist()},
            "params": {"drivers": 0}}
    with TestClient(build_app(result.model_uri)) as client:
        response = client.post("/invocations", json=body)
    assert response.status_code == 200, response.text
    served = pd.DataFrame(response.json()["predictions"])
    assert (served[["relative_drivers_up", "relative_drivers_down"]] == "").all().all()
    local = result.model.predict(rows, n_drivers=0).reset_index(drop=True)
    pdt.assert_frame_equal(served[local.columns], local, check_dtype=False)


def test_history_from_the_registry_file_equals_mlflow_client(trained_home, monkeypatch):
    from smallcap_regime.tracking import artifacts, serving

    home, result = trained_home
    choice = serving.choose_model(home, "smallcap-regime")
    assert artifacts._local_predictions(home, choice) is not None  # the direct read answered
    fast = artifacts.backtest_predictions(home, choice)
    monkeypatch.setattr(artifacts, "_local_predictions", lambda home, choice: None)
    pdt.assert_frame_equal(fast, artifacts.backtest_predictions(home, choice))
    pdt.assert_frame_equal(fast, result.backtest.predictions, check_freq=False)


@pytest.mark.parametrize("command", [["features"], ["data", "status"]])
def test_features_and_data_status_load_no_model_tracking_or_tuning_library(command, tmp_path):
    heavy = ("optuna", "mlflow", "lightgbm", "sklearn", "sqlalchemy", "linearmodels", "smallcap_regime.tuning")
    code = ("import json, sys\nfrom smallcap_regime.cli import main\n"
            "try:\n    main()\nexcept SystemExit as exc:\n    code = exc.code\n"
            f"print(json.dumps([code, [m for m in {heavy!r} if m in sys.modules]]))")
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "REGIME_HOME")}
    run = subprocess.run([sys.executable, "-c", code, *command, "--home", str(tmp_path / "home")],
                         capture_output=True, text=True, env={**env, "COLUMNS": "80"}, timeout=300)
    exit_code, loaded = json.loads(run.stdout.strip().splitlines()[-1])
    assert exit_code in (0, None), run.stdout + run.stderr
    assert "offline sample" in run.stdout.replace("\n", " ")
    assert loaded == []
