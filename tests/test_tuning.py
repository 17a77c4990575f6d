"""Tuning: nested purged walk-forward objective, Optuna studies on journal storage, trials tracked in MLflow.

Runs on the real offline sample with a tiny search space (3 inner folds, 20-60 trees) so the file stays fast.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import mlflow
import optuna
import pandas as pd
import pytest
from optuna.storages import JournalStorage
from optuna.trial import FixedTrial, TrialState

from smallcap_regime import dataset, tuning
from smallcap_regime.data import Panel, load_panel
from smallcap_regime.dataset import build_dataset
from smallcap_regime.errors import ConfigError, RegimeError
from smallcap_regime.experiment import load_experiment
from smallcap_regime.home import mlflow_uri
from smallcap_regime.models.lgbm import make_regressor
from smallcap_regime.tracking import store
from smallcap_regime.tuning import objective
from smallcap_regime.tuning import storage as tuning_storage
from smallcap_regime.tuning import study as tuning_study
from smallcap_regime.tuning.objective import inner_data
from smallcap_regime.tuning.space import search_space
from smallcap_regime.tuning.study import default_score

REPO = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).with_name("tuning_worker.py")
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
TINY_TUNING = """
[tuning]
objective = "relative.regressor"
metric = "mse"
inner_folds = 3
seed = 7
n_estimators = [20, 60]
num_leaves = [3, 7]
learning_rate = [0.03, 0.1]
min_child_samples = [20, 60]
lambda_l2 = [0.0, 10.0]
"""


def write_experiment(directory: Path, tuning_section: str = TINY_TUNING, name: str = "tiny") -> Path:
    """The quickstart experiment (offline sample) with its [tuning] section replaced."""
    text = (REPO / "experiments" / "quickstart.toml").read_text()
    path = directory / f"{name}.toml"
    path.write_text(text[: text.index("[tuning]")] + tuning_section)
    return path


@pytest.fixture(scope="module")
def panel(tmp_path_factory) -> Panel:
    return load_panel(tmp_path_factory.mktemp("sample-home"), "sample")


@pytest.fixture(scope="module")
def mlflow_schema(tmp_path_factory) -> Path:
    """An MLflow store with the schema but no experiment: creating the schema takes seconds, copying it does not."""
    template = tmp_path_factory.mktemp("mlflow-template")
    store.configure(template)
    mlflow.MlflowClient().search_experiments()
    return Path(mlflow_uri(template).removeprefix("sqlite:///"))


@pytest.fixture
def home(home, mlflow_schema) -> Path:
    shutil.copy(mlflow_schema, mlflow_uri(home).removeprefix("sqlite:///"))
    return home


def finished_numbers(study: optuna.Study) -> list[int]:
    return sorted(t.number for t in study.get_trials(states=FINISHED))


@pytest.mark.slow
def test_study_trials_in_mlflow_and_best_params_reach_training(home, tmp_path, panel):
    path = write_experiment(tmp_path)
    exp = load_experiment(path)
    seen = []
    study = tuning.tune(exp, home, trials=4, on_trial=seen.append, panel=panel)

    assert study.study_name == "tiny-relative.regressor" == tuning.study_name_for(exp)
    assert finished_numbers(study) == [0, 1, 2, 3] == [t.number for t in seen]
    assert Path(tuning.default_storage(home)) == home / "tuning" / "journal.log"
    assert Path(tuning.default_storage(home)).is_file()
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert complete and study.user_attrs["best_params"] == study.best_trial.params

    store.configure(home)
    client = mlflow.MlflowClient()
    runs = client.search_runs([store.experiment_id(home, "tiny")])
    parents = [r for r in runs if r.info.run_name == "tune tiny-relative.regressor"]
    assert len(parents) == 1
    parent = parents[0]
    children = {int(r.data.tags["optuna_trial_number"]): r for r in runs
                if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    assert sorted(children) == [0, 1, 2, 3]
    for trial in study.get_trials(states=FINISHED):
        run = children[trial.number]
        assert run.data.tags["state"] == trial.state.name
        assert run.data.params == {k: str(v) for k, v in trial.params.items()}
        history = client.get_metric_history(run.info.run_id, "mse_fold")
        assert {m.step: m.value for m in history} == pytest.approx(trial.intermediate_values)
        if trial.state == TrialState.COMPLETE:
            assert run.data.metrics["mse"] == pytest.approx(trial.value)
        # timed as the trial ran (not as long as logging took), and finished (pruning is by design, not failure)
        assert run.info.start_time == int(trial.datetime_start.timestamp() * 1000)
        assert run.info.end_time == int(trial.datetime_complete.timestamp() * 1000)
        assert run.info.status == "FINISHED" and run.data.tags["worker"].endswith(f":{os.getpid()}")
    best = study.best_trial
    assert parent.data.params["best.num_leaves"] == str(best.params["num_leaves"])
    assert parent.data.metrics["best_mse"] == pytest.approx(best.value)
    # the model spec's own parameters scored on the same inner folds: what tuning has to beat
    settings = search_space(exp)
    data = inner_data(build_dataset(exp, home=home, panel=panel, before=exp.validation.oos_start), settings)
    default = default_score(data, settings, exp.models["relative"].regressor)
    assert study.user_attrs["default_value"] == pytest.approx(default)
    assert parent.data.metrics["default_mse"] == pytest.approx(default)
    assert parent.data.tags["mlflow.note.content"] == (
        f"study tiny-relative.regressor: best trial {best.number}: mse {best.value:.4f} (lower is better); "
        f"default parameters {default:.4f}, best - default = {best.value - default:+.4f}")
    assert parent.info.end_time >= max(children[n].info.end_time for n in children)
    chosen = tuning.best_trial(home, study.study_name)
    assert (chosen.number, chosen.metric, chosen.default_value) == (best.number, "mse", pytest.approx(default))
    artifact = mlflow.artifacts.load_dict(f"{parent.info.artifact_uri}/best_params.json")
    assert artifact["params"] == best.params and artifact["trial"] == best.number

    overrides = tuning.best_params(home, study.study_name)
    assert overrides == {"relative": {"regressor": best.params}}
    trained = load_experiment(path, model_overrides=overrides)
    spec = trained.models["relative"].regressor
    assert {k: spec[k] for k in best.params} == best.params
    assert spec["max_bin"] == 63 and spec["seed"] == exp.models["relative"].regressor["seed"]  # untuned: the spec's
    assert trained.models["relative"].classifier == exp.models["relative"].classifier
    assert make_regressor(spec).get_params()["n_estimators"] == best.params["n_estimators"]

    # the budget is the study's total: rerunning with the same count does nothing, a larger one resumes
    assert finished_numbers(tuning.tune(exp, home, trials=4, panel=panel)) == [0, 1, 2, 3]
    assert finished_numbers(tuning.tune(exp, home, trials=5, panel=panel)) == [0, 1, 2, 3, 4]
    (tmp_path / "other").mkdir()
    classifier = TINY_TUNING.replace('"relative.regressor"', '"relative.classifier"').replace('"mse"', '"log_loss"')
    other = write_experiment(tmp_path / "other", classifier)  # same experiment name, another objective
    with pytest.raises(RegimeError, match="tunes objective 'relative.regressor', not 'relative.classifier'"):
        tuning.tune(load_experiment(other), home, trials=6, study=study.study_name, panel=panel)


@pytest.mark.slow
def test_a_failing_trial_is_marked_failed_not_left_running(home, tmp_path, panel, monkeypatch):
    def broken(*args):
        raise RuntimeError("boom")

    monkeypatch.setattr(objective, "_fold_score", broken)
    exp = load_experiment(write_experiment(tmp_path))
    with pytest.raises(RuntimeError, match="boom"):
        tuning.tune(exp, home, trials=2, panel=panel)
    study = optuna.load_study(study_name=tuning.study_name_for(exp), storage=tuning.open_storage(None, home))
    assert [t.state for t in study.trials] == [TrialState.FAIL]  # a RUNNING leftover would hold the budget


@pytest.mark.slow
def test_a_dead_local_workers_trial_is_failed_and_replaced_on_the_next_start(home, tmp_path, panel, caplog):
    exp = load_experiment(write_experiment(tmp_path))
    name = tuning.study_name_for(exp)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    storage = tuning.open_storage(None, home)
    study = optuna.create_study(study_name=name, storage=storage)
    study.ask().set_user_attr("worker", f"{socket.gethostname()}:{int(gone.stdout)}")  # killed mid-trial
    study.ask().set_user_attr("worker", "another-machine:1")  # cannot be checked from here: left running

    with caplog.at_level("WARNING", logger="smallcap_regime.tuning"):
        tuned = tuning.tune(exp, home, trials=3, panel=panel)
    assert [t.state for t in tuned.trials] == [TrialState.FAIL, TrialState.RUNNING, TrialState.COMPLETE,
                                               TrialState.COMPLETE]
    dead = f"{socket.gethostname()}:{int(gone.stdout)}"
    assert f"trial 0 of worker {dead} was abandoned (worker killed or lost); marked failed" in caplog.text
    assert tuned.metric_names == ["mse"]


@pytest.mark.slow
def test_two_workers_share_one_journal_study(home, tmp_path, panel):
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    path = write_experiment(tmp_path)
    panel_file = tmp_path / "panel.pkl"
    panel_file.write_bytes(pickle.dumps(panel))
    args = [sys.executable, str(WORKER), str(path), str(home), str(panel_file), "6", "shared", str(barrier), "2"]
    workers = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        for worker in workers:
            _, err = worker.communicate(timeout=120)
            assert worker.returncode == 0, err
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()

    study = optuna.load_study(study_name="shared", storage=tuning.open_storage(None, home))
    assert finished_numbers(study) == list(range(6))
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.FAIL))
    assert len({t.user_attrs["worker"] for t in study.get_trials(states=FINISHED)}) == 2  # both did trials

    store.configure(home)
    runs = mlflow.MlflowClient().search_runs([store.experiment_id(home, "tiny")])
    parents = {r.info.run_id for r in runs if r.info.run_name == "tune shared"}
    assert len(parents) == 2  # one parent run per worker
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") in parents]
    assert sorted(int(r.data.tags["optuna_trial_number"]) for r in children) == list(range(6))


def test_a_trial_claimed_beyond_the_budget_goes_back_to_the_queue(tmp_path):
    storage = tuning.open_storage(str(tmp_path / "journal.log"), tmp_path)
    study = optuna.create_study(study_name="s", storage=storage)
    study.add_trial(optuna.trial.create_trial(value=1.0))
    ask = study.ask

    def ask_after_another_worker() -> optuna.Trial:  # it takes the last slot between our count and our ask
        storage.create_new_trial(storage.get_study_id_from_name("s"))
        return ask()

    study.ask = ask_after_another_worker
    assert tuning_study._claim(study, storage, budget=2) is None
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING]
    study.ask = ask
    assert tuning_study._claim(study, storage, budget=2) is None  # used up: nothing new is asked
    assert len(study.trials) == 3
    assert tuning_study._claim(study, storage, budget=3).number == 2  # a larger budget reuses the queued trial


def pre_oos(exp, panel):
    return build_dataset(exp, panel=panel, before=exp.validation.oos_start)


def test_inner_data_refuses_data_reaching_oos_start(tmp_path, panel):
    exp = load_experiment(write_experiment(tmp_path, TINY_TUNING))
    with pytest.raises(RegimeError, match="tuning data must end before oos_start 1975-01; build it with before="):
        objective.inner_data(build_dataset(exp, panel=panel), tuning.search_space(exp))


@pytest.mark.slow
def test_tuning_reads_no_row_at_or_after_oos_start(home, tmp_path, panel, monkeypatch):
    exp = load_experiment(write_experiment(tmp_path))
    oos = exp.validation.oos_start
    seen: list[pd.Timestamp] = []

    def spy(func):
        def wrapper(frame, *args, **kwargs):
            seen.append(frame.index.max())
            return func(frame, *args, **kwargs)
        return wrapper

    monkeypatch.setattr(dataset, "build_features", spy(dataset.build_features))
    monkeypatch.setattr(dataset, "build_targets", spy(dataset.build_targets))
    frame = panel.frame
    poisoned = frame.copy()
    later = poisoned.index >= oos
    assert later.sum() > 100
    poisoned.loc[later] = 1e6  # any leak of post-out-of-sample rows would move the losses
    clean = tuning.tune(exp, home, trials=3, study="clean", panel=Panel(frame[frame.index < oos], "sample"))
    dirty = tuning.tune(exp, home, trials=3, study="dirty", panel=Panel(poisoned, "sample"))

    assert seen and max(seen) < oos
    for a, b in zip(clean.trials, dirty.trials, strict=True):
        assert (a.params, a.intermediate_values, a.value) == (b.params, b.intermediate_values, b.value)
    # every inner target (months t+1..t+h) was realised before oos_start, with the embargo as in the backtest
    data = objective.inner_data(pre_oos(exp, panel), tuning.search_space(exp))
    last = data.features.index[-1]
    # the last usable origin is the last one the first out-of-sample fold trains on: its target ends at
    # oos_start - embargo, i.e. realised by the out-of-sample start
    assert last + pd.offsets.MonthEnd(exp.horizon + exp.validation.embargo_months) == oos
    assert len(data.folds) == 3 and data.y.notna().all()
    for fold in data.folds:
        assert fold.train[-1] + exp.horizon + exp.validation.embargo_months == fold.test[0]
    assert len(data.folds[0].train) >= exp.validation.min_train_months
    assert len({len(fold.test) for fold in data.folds}) == 1  # equal test blocks ...
    assert data.folds[-1].test[-1] == len(data.features) - 1  # ... ending at the last usable origin


def test_pruning_compares_mean_loss_over_the_same_folds():
    study = optuna.create_study(direction="minimize")
    for folds in ([1.0, 5.0, 3.0], [1.2, 5.2, 3.0], [0.8, 4.8, 3.0]):  # means over folds 0..1: 3.0, 3.2, 2.8
        study.add_trial(optuna.trial.create_trial(value=sum(folds) / 3, intermediate_values=dict(enumerate(folds))))
    pruner = objective.FoldMedianPruner(n_startup_trials=3, n_warmup_steps=1)

    def running(*folds: float) -> optuna.trial.FrozenTrial:
        return optuna.trial.create_trial(state=TrialState.RUNNING, intermediate_values=dict(enumerate(folds)))

    # best on the easy first fold but bad on the second: mean 3.25 > median 3.0. MedianPruner would keep it (its
    # best step, 0.5, beats the median at step 1, 5.0).
    assert pruner.prune(study, running(0.5, 6.0))
    assert not optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1).prune(study, running(0.5, 6.0))
    assert not pruner.prune(study, running(1.5, 4.0))  # mean 2.75
    assert not pruner.prune(study, running(9.0))  # warm-up: fold 0 alone never prunes
    assert not objective.FoldMedianPruner(n_startup_trials=4).prune(study, running(0.5, 6.0))  # too few completed


def test_classifier_objective_scores_log_loss(tmp_path, panel):
    section = TINY_TUNING.replace('"relative.regressor"', '"absolute.classifier"').replace('"mse"', '"log_loss"')
    exp = load_experiment(write_experiment(tmp_path, section + "\n[tuning.absolute]\nnum_leaves = [2, 4]\n"))
    settings = tuning.search_space(exp)
    assert settings.space["num_leaves"] == (2, 4) and settings.metric == "log_loss"
    data = objective.inner_data(pre_oos(exp, panel), settings)
    assert set(data.y.unique()) == {0.0, 1.0}
    params = {"n_estimators": 20, "num_leaves": 3, "learning_rate": 0.05, "min_child_samples": 30, "lambda_l2": 1.0}
    loss = objective.make_objective(data, settings, exp.models["absolute"].classifier)(FixedTrial(params))
    assert 0.4 < loss < 1.0  # near log(2) = 0.69: probabilities of a hard-to-forecast sign


def test_too_little_history_is_a_clear_error(tmp_path, panel):
    exp = load_experiment(write_experiment(tmp_path, TINY_TUNING.replace("inner_folds = 3", "inner_folds = 200")))
    with pytest.raises(RegimeError, match=r"origins before oos_start 1975-01 are too few .* 200 inner folds"):
        objective.inner_data(pre_oos(exp, panel), tuning.search_space(exp))


def test_storage_urls(home, tmp_path, monkeypatch):
    with pytest.raises(RegimeError, match=r"SQLite is not supported.*journal.*postgresql://"):
        tuning.open_storage("sqlite:///x.db", home)
    with pytest.raises(RegimeError, match="SQLite is not supported"):
        tuning.open_storage("sqlite+pysqlite:///x.db", home)
    assert isinstance(tuning.open_storage(None, home), JournalStorage)
    assert (home / "tuning" / "journal.log").is_file()
    assert isinstance(tuning.open_storage(str(tmp_path / "shared" / "study.log"), home), JournalStorage)
    assert (tmp_path / "shared" / "study.log").is_file()

    # a database URL goes to Optuna's RDB storage; a failure never shows the password
    with pytest.raises(RegimeError, match=r"storage postgresql://u:\*\*\*@localhost:1/db") as err:
        tuning.open_storage("postgresql://u:secret@localhost:1/db", home)
    assert "secret" not in str(err.value)
    opened = []
    monkeypatch.setattr(tuning_storage, "RetryingRDBStorage", lambda url, **kwargs: opened.append(url) or "rdb")
    monkeypatch.setattr(tuning_storage, "schema_lock", lambda url: contextlib.nullcontext())  # no server here
    assert tuning.open_storage("postgresql://u:p@db.example/optuna", home) == "rdb"
    assert opened == ["postgresql+psycopg://u:p@db.example/optuna"]  # SQLAlchemy 2.1's driver for postgresql://


def test_best_params_errors(home):
    with pytest.raises(RegimeError, match="no tuning studies"):
        tuning.best_params(home, "tiny-relative.regressor")
    optuna.create_study(study_name="empty", storage=tuning.open_storage(None, home))
    with pytest.raises(RegimeError, match=r"no study 'nope' in .*journal.log; studies: empty"):
        tuning.best_params(home, "nope")
    with pytest.raises(RegimeError, match="'empty' .* has no completed trial"):
        tuning.best_params(home, "empty")


def test_experiment_without_tuning_loads_but_cannot_be_tuned(tmp_path):
    path = write_experiment(tmp_path, "")
    exp = load_experiment(path)
    with pytest.raises(ConfigError, match=re.escape(str(path)) + r".*no \[tuning\] section"):
        tuning.search_space(exp)


@pytest.mark.parametrize(("change", "message"), [
    (lambda s: s.replace('"relative.regressor"', '"relative.ranker"'), r"\[tuning\]: objective must be one of"),
    (lambda s: s.replace('"mse"', '"log_loss"'), r"\[tuning\]: metric for a regressor objective must be 'mse'"),
    (lambda s: s + "num_leafs = [2, 8]\n", r"\[tuning\]: unknown key 'num_leafs'; expected one of: objective"),
    (lambda s: s.replace("[20, 60]\nnum", "[60, 20]\nnum"), r"\[tuning\]: n_estimators low must be <= high"),
    (lambda s: s.replace("[20, 60]\nnum", "[20.5, 60]\nnum"), r"n_estimators must be a \[low, high\] pair of int"),
    (lambda s: s.replace("[0.03, 0.1]", "[0.0, 0.1]"), r"learning_rate bounds must be > 0"),
    (lambda s: s + "feature_fraction = [0.5, 1.5]\n", r"feature_fraction bounds must be in \(0, 1\]"),
    (lambda s: s.replace("inner_folds = 3", "inner_folds = 1"), r"inner_folds must be an integer >= 2"),
    (lambda s: s + "[tuning.smallcap]\nnum_leaves = [2, 4]\n", r"unknown table \[tuning.smallcap\]"),
    (lambda s: s + "[tuning.relative]\nmax_depth = 3\n", r"\[tuning.relative\]: max_depth must be a \[low, high\]"),
    (lambda s: s + "[tuning.absolute]\nnum_leafs = [2, 4]\n", r"\[tuning.absolute\]: unknown key 'num_leafs'"),
])
def test_search_space_errors_name_file_and_key(tmp_path, change, message):
    path = write_experiment(tmp_path, change(TINY_TUNING))
    with pytest.raises(ConfigError, match=re.escape(str(path)) + ".*" + message):  # at load, before any work
        load_experiment(path)


# A worker killed mid-study (SIGKILL: no cleanup): two finished trials, then a third with a parameter and a report.
KILLED_WORKER = """
import os, signal, sys
from pathlib import Path
import optuna
from smallcap_regime.tuning import open_storage

study = optuna.create_study(study_name="s", storage=open_storage(sys.argv[1], Path(sys.argv[1]).parent))
for number in range(3):
    trial = study.ask()
    x = trial.suggest_float("x", 0.0, 1.0)
    trial.report(x / 2, 0)
    trial.set_user_attr("worker", "killed")
    if number == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    study.tell(trial, x)
"""


def test_the_journal_file_survives_a_killed_worker_and_reads_in_stock_optuna(tmp_path):
    path = tmp_path / "journal.log"
    killed = subprocess.run([sys.executable, "-c", KILLED_WORKER, str(path)], capture_output=True, text=True,
                            timeout=120)
    assert killed.returncode == -9, killed.stderr
    # read back by a fresh process's storage and by Optuna's own journal backend (optuna-dashboard reads it so)
    stock = JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    for storage in (tuning.open_storage(str(path), tmp_path), stock):
        trials = optuna.load_study(study_name="s", storage=storage).trials
        assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.RUNNING]
        for trial in trials:
            assert trial.user_attrs == {"worker": "killed"}  # written at once: the stale-trial check reads it
        for trial in trials[:2]:
            assert trial.intermediate_values == {0: trial.params["x"] / 2}
        assert [t.value for t in trials[:2]] == [t.params["x"] for t in trials[:2]]
        # the killed trial's parameter and report were held for its end, which never came
        assert trials[2].params == {} and trials[2].intermediate_values == {}
    # both write the same file under the same lock: a stock Optuna process may add trials to the study
    optuna.load_study(study_name="s", storage=stock).add_trial(optuna.trial.create_trial(value=0.5))
    assert len(optuna.load_study(study_name="s", storage=tuning.open_storage(str(path), tmp_path)).trials) == 4


def test_the_journal_file_fsyncs_once_per_trial_not_per_record(tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr(tuning_storage.os, "fsync", lambda fd: synced.append(fd))
    study = optuna.create_study(study_name="s", storage=tuning.open_storage(str(tmp_path / "j.log"), tmp_path))
    study.set_user_attr("metric", "mse")
    assert len(synced) == 2  # study settings: each on disk when the call returns
    for _ in range(2):
        trial = study.ask()
        for name in ("a", "b", "c"):
            trial.suggest_float(name, 0.0, 1.0)
        for step in range(3):
            trial.report(0.1, step)
        trial.set_user_attr("worker", "here")
        study.tell(trial, 1.0)
    assert len(synced) == 2 + 2  # 9 records per trial, one fsync: its end state (covering the whole file)


def test_a_running_trials_parameters_and_reports_are_written_with_its_end(tmp_path):
    path = str(tmp_path / "j.log")
    ours = optuna.create_study(study_name="s", storage=tuning.open_storage(path, tmp_path))
    theirs = JournalStorage(optuna.storages.journal.JournalFileBackend(path))  # another process's view
    trial = ours.ask()
    trial.set_user_attr("worker", "here")
    x = trial.suggest_float("x", 0.0, 1.0)
    trial.report(0.5, 0)
    assert trial.params == {"x": x} and ours.trials[0].intermediate_values == {0: 0.5}  # our view: at once
    seen = optuna.load_study(study_name="s", storage=theirs).trials[0]
    assert seen.user_attrs == {"worker": "here"} and seen.params == {} and seen.intermediate_values == {}
    lines = Path(path).read_text().count("\n")
    ours.tell(trial, 1.0)
    assert Path(path).read_text().count("\n") == lines + 3  # parameter, report and end state: one append
    seen = optuna.load_study(study_name="s", storage=theirs).trials[0]
    assert (seen.state, seen.params, seen.intermediate_values, seen.value) == (TrialState.COMPLETE, {"x": x},
                                                                               {0: 0.5}, 1.0)


def test_a_held_trial_failed_by_another_worker_ends_cleanly(tmp_path):
    path = str(tmp_path / "j.log")
    ours = optuna.create_study(study_name="s", storage=tuning.open_storage(path, tmp_path))
    trial = ours.ask()
    trial.suggest_float("x", 0.0, 1.0)
    other = tuning.open_storage(path, tmp_path)  # a worker that found this trial stale
    optuna.load_study(study_name="s", storage=other)
    other.set_trial_state_values(trial._trial_id, TrialState.FAIL)
    frozen = ours.tell(trial, 1.0, skip_if_finished=True)  # as `tune` ends a trial
    assert frozen.state == TrialState.FAIL
    # failed after our last look: the end state is refused as by Optuna, the held records are not written
    trial = ours.ask()
    trial.suggest_float("x", 0.0, 1.0)
    other.set_trial_state_values(trial._trial_id, TrialState.FAIL)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        ours._storage.set_trial_state_values(trial._trial_id, TrialState.COMPLETE, [1.0])
    ours.tell(ours.ask(), 2.0)  # later work is not disturbed by the dropped records
    stock = JournalStorage(optuna.storages.journal.JournalFileBackend(path))
    assert [(t.state, t.params) for t in optuna.load_study(study_name="s", storage=stock).trials] == [
        (TrialState.FAIL, {}), (TrialState.FAIL, {}), (TrialState.COMPLETE, {})]


def test_study_writes_in_one_block_share_one_fsync_and_other_threads_are_not_deferred(tmp_path, monkeypatch):
    import threading

    synced = []
    monkeypatch.setattr(tuning_storage.os, "fsync", lambda fd: synced.append(fd))
    storage = tuning.open_storage(str(tmp_path / "j.log"), tmp_path)
    with tuning_storage.one_fsync(storage):
        study = optuna.create_study(study_name="s", storage=storage)
        for key in ("experiment", "objective", "metric"):
            study.set_user_attr(key, "x")
        other = threading.Thread(target=study.set_user_attr, args=("default_value", 0.5))
        other.start()
        other.join()
        assert len(synced) == 1  # the other thread's write, at once
    assert len(synced) == 2  # this thread's four, together when the block ends
    assert optuna.load_study(study_name="s", storage=tuning.open_storage(str(tmp_path / "j.log"), tmp_path)
                             ).user_attrs == {"experiment": "x", "objective": "x", "metric": "x", "default_value": 0.5}


@pytest.mark.slow
def test_a_tracking_store_that_cannot_be_written_stops_the_worker_after_its_current_trial(home, tmp_path, panel):
    exp = load_experiment(write_experiment(tmp_path))
    store.configure(home)
    mlflow.delete_experiment(store.experiment_id(home, exp.name))  # runs cannot be created in a deleted experiment
    with pytest.raises(mlflow.exceptions.MlflowException, match="active"):
        tuning.tune(exp, home, trials=4, panel=panel)
    study = optuna.load_study(study_name=tuning.study_name_for(exp), storage=tuning.open_storage(None, home))
    assert len(study.get_trials(states=FINISHED)) < 4  # not the whole budget before saying so
    assert not study.get_trials(states=(TrialState.RUNNING,))


# `regime tune` killed (SIGKILL) in the first fold of its third trial: no cleanup, its MLflow thread mid-write.
KILLED_TUNE = """
import os, pickle, signal, sys
from pathlib import Path
from smallcap_regime.experiment import load_experiment
from smallcap_regime.tuning import objective, tune

experiment, home, panel_file = sys.argv[1:]
fold_score, calls = objective._fold_score, []

def dying(data, fold, params, model, binned=None):
    calls.append(fold)
    if len(calls) > 2 * len(data.folds):
        os.kill(os.getpid(), signal.SIGKILL)
    return fold_score(data, fold, params, model, binned)

objective._fold_score = dying
tune(load_experiment(experiment), Path(home), trials=4, panel=pickle.loads(Path(panel_file).read_bytes()))
"""


@pytest.mark.slow
def test_a_killed_tune_keeps_its_finished_trials_and_the_rerun_completes_the_budget(home, tmp_path, panel):
    path = write_experiment(tmp_path)
    panel_file = tmp_path / "panel.pkl"
    panel_file.write_bytes(pickle.dumps(panel))
    killed = subprocess.run([sys.executable, "-c", KILLED_TUNE, str(path), str(home), str(panel_file)],
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr
    exp = load_experiment(path)
    storage = tuning.open_storage(None, home)
    before = optuna.load_study(study_name=tuning.study_name_for(exp), storage=storage).trials
    assert [t.state for t in before][-1] == TrialState.RUNNING and len(before) >= 3
    kept = {t.number: t.intermediate_values for t in before if t.state in FINISHED}
    assert len(kept) >= 2  # (with pruning, trials end early: the one killed is the third or a later one)

    resumed = tuning.tune(exp, home, trials=4, panel=panel)
    assert {t.number: t.intermediate_values for t in resumed.trials if t.number in kept} == kept
    assert resumed.trials[before[-1].number].state == TrialState.FAIL  # the killed one: failed, replaced
    assert len(resumed.get_trials(states=FINISHED)) == 4


@pytest.mark.slow
def test_a_trial_failed_by_another_worker_mid_objective_is_dropped_and_replaced(home, tmp_path, panel, monkeypatch,
                                                                               caplog):
    """A late heartbeat (a database restart) lets another worker fail a running trial; the worker's next report is
    then refused. It used to end the worker with UpdateFinishedTrialError; now the trial is dropped and replaced."""
    exp = load_experiment(write_experiment(tmp_path))
    fold_score, failed = objective._fold_score, []

    def failed_by_another_worker(data, fold, params, model, binned=None):
        if not failed:
            other = tuning.open_storage(None, home)
            study = optuna.load_study(study_name=tuning.study_name_for(exp), storage=other)
            (running,) = study.get_trials(states=(TrialState.RUNNING,))
            other.set_trial_state_values(running._trial_id, TrialState.FAIL)
            failed.append(running.number)
        return fold_score(data, fold, params, model, binned)

    monkeypatch.setattr(objective, "_fold_score", failed_by_another_worker)
    with caplog.at_level("WARNING", logger="smallcap_regime.tuning"):
        tuned = tuning.tune(exp, home, trials=2, panel=panel)
    assert failed == [0] and tuned.trials[0].state == TrialState.FAIL
    assert len(tuned.get_trials(states=FINISHED)) == 2
    assert "trial 0 was marked failed by another worker" in caplog.text


def test_a_lost_connection_is_recognised_through_optunas_and_sqlalchemys_wrappers():
    from optuna.exceptions import StorageInternalError
    from sqlalchemy.exc import IntegrityError, OperationalError, PendingRollbackError

    def chained() -> BaseException:
        try:
            try:
                raise OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))
            except OperationalError:
                raise PendingRollbackError("Can't reconnect until invalid transaction is rolled back") from None
        except PendingRollbackError as exc:
            try:
                raise StorageInternalError("An exception is raised during the commit.") from exc
            except StorageInternalError as wrapped:
                return wrapped

    wrapped = chained()
    assert wrapped.__cause__.__cause__ is None  # `from None`: the lost connection is only the context
    assert tuning_storage.connection_lost(wrapped)
    assert not tuning_storage.connection_lost(StorageInternalError("x"))
    assert not tuning_storage.connection_lost(IntegrityError("INSERT", {}, Exception("duplicate key")))


@pytest.mark.parametrize(("code", "restarting"), [("57P01", True), ("57P03", True), ("28P01", False), (None, False)])
def test_a_server_restart_is_told_from_a_refused_login(code, restarting):
    from sqlalchemy.exc import OperationalError

    class Driver(Exception):
        sqlstate = code

    assert tuning_storage.server_restarting(OperationalError("connect", {}, Driver("x"))) is restarting
