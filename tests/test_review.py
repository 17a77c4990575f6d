"""What a reviewer reads in MLflow: headline names and order, the vs_champion verdicts, version descriptions, and runs
a killed command left RUNNING (real `regime train` and `regime tune` subprocesses, killed with SIGKILL)."""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest
from mlflow import MlflowClient

from smallcap_regime.tracking import review, store
from smallcap_regime.tracking.registry import Decision
from smallcap_regime.tracking.stale import dead_here, worker

from helpers import process_alive, process_tree, write_experiment

REGIME = str(Path(sys.executable).with_name("regime"))


def test_gate_metric_sorts_first_and_is_not_logged_twice():
    names = review.headline_names("relative.lgbm_cal.brier_skill")
    assert names == ["0_gate_rel_brier_skill", "1_rel_auc", "2_rel_calls_accuracy", "3_rel_p50_hit_rate",
                     "5_rel_cw_pvalue", "6_abs_brier_skill", "7_rel_sharpe", "8_rel_sharpe_buy_hold"] == sorted(names)
    assert all(len(name) <= 22 for name in names)  # the UI's columns show about 17 characters
    other = review.headline_names("absolute.lgbm.auc")
    assert other[0] == "0_gate_abs_auc_lgbm" and "4_rel_brier_skill" in other
    assert len(other) == 9 and other == sorted(other)
    # whatever the metric, the gate column sorts before every plain `<target>.<model>.<metric>` name
    assert sorted([*other, "absolute.hist_mean.auc", "absolute.lgbm.auc", "0"])[:2] == ["0", "0_gate_abs_auc_lgbm"]


def test_headline_view_shows_the_gate_metric_first():
    import json

    view = json.loads(review.headline_view("relative.lgbm_cal.brier_skill"))
    assert view == {"selectedColumns": [
        "metrics.`0_gate_rel_brier_skill`", "metrics.`1_rel_auc`", "metrics.`2_rel_calls_accuracy`",
        "metrics.`3_rel_p50_hit_rate`", "metrics.`5_rel_cw_pvalue`", "metrics.`6_abs_brier_skill`",
        "metrics.`7_rel_sharpe`", "metrics.`8_rel_sharpe_buy_hold`", "params.`params_source`", "params.`forced`"]}
    tags = {review.PRIMARY_TAG: "relative.lgbm_cal.cw_pvalue"}
    assert review.experiment_view(tags) == review.headline_view("relative.lgbm_cal.cw_pvalue")
    assert review.experiment_view({}) == review.headline_view("relative.lgbm_cal.brier_skill")  # the default


def test_vs_champion_says_which_side_is_better():
    primary = "relative.lgbm_cal.brier_skill"
    this = {"0_gate_rel_brier_skill": 0.03, "1_rel_auc": 0.55, "5_rel_cw_pvalue": 0.20, "6_abs_brier_skill": 0.01,
            "8_rel_sharpe_buy_hold": 0.4}
    champ = {"0_gate_rel_brier_skill": 0.02, "1_rel_auc": 0.55, "5_rel_cw_pvalue": 0.10, "6_abs_brier_skill": 0.02,
             "8_rel_sharpe_buy_hold": 0.4}
    table = review.vs_champion(this, champ, primary).set_index("metric")
    assert table["better?"].to_dict() == {"0_gate_rel_brier_skill": "yes", "1_rel_auc": "equal",
                                          "5_rel_cw_pvalue": "no",  # a higher p-value is worse
                                          "6_abs_brier_skill": "no", "8_rel_sharpe_buy_hold": "n/a"}
    pvalue = review.vs_champion({"0_gate_rel_cw_pvalue": 0.05}, {"0_gate_rel_cw_pvalue": 0.10},
                                "relative.lgbm_cal.cw_pvalue")
    assert pvalue["better?"].tolist() == ["yes"]  # the gate on a p-value: lower is better
    # a champion trained before the headline names existed: its values are unknown, not "worse"
    old = review.vs_champion(this, {"relative.lgbm_cal.brier_skill": 0.02}, primary)
    assert set(old["better?"]) == {"n/a"} and old["champion"].isna().all()
    first = review.vs_champion(this, None, primary)
    assert set(first["better?"]) == {"no champion"}
    text = review.vs_champion_markdown(table.reset_index(), "champion v3")
    assert text.splitlines()[:3] == ["| metric | this run | champion v3 | better? |", "|---|---:|---:|---|",
                                     "| `0_gate_rel_brier_skill` | 0.03 | 0.02 | yes |"]


def test_version_description_names_training_data_test_and_decision():
    decision = Decision(False, False, "does not beat champion v2 (brier_skill 0.0100 vs 0.0200)", 0.01, 0.02, "2",
                        "relative.lgbm_cal.brier_skill")
    trained = review.Trained("quickstart", "abc123", "optuna study quickstart-relative.classifier, trial 4",
                             "sample panel 1949-01..2017-03 @ arch 8.0.0, linearmodels 7.1", "f" * 64)
    table = review.vs_champion({"0_gate_rel_brier_skill": 0.01}, {"0_gate_rel_brier_skill": 0.02},
                               "relative.lgbm_cal.brier_skill")
    text = review.version_description(trained, decision, table)
    assert text.splitlines()[:4] == [
        "Trained by run `abc123` of experiment **quickstart**, parameters from optuna study "
        "quickstart-relative.classifier, trial 4.",
        "Data: sample panel 1949-01..2017-03 @ arch 8.0.0, linearmodels 7.1 (fingerprint `ffffffffffffffff`).",
        "Gate test: `relative.lgbm_cal.brier_skill` = 0.0100 must beat every baseline of its target and the "
        "champion v2 (0.0200) on the same out-of-sample folds.",
        "Gate decision at registration: **not promoted**: does not beat champion v2 (brier_skill 0.0100 vs 0.0200)."]
    assert "| `0_gate_rel_brier_skill` | 0.01 | 0.02 | no |" in text
    assert review.rounded(4.97612e-7) == 4.976e-7 and review.rounded(0.030811) == 0.03081
    tags = review.gate_tags(decision)
    assert tags["gate_promoted"] == "False" and tags["gate_champion_version"] == "2"
    assert float(tags["gate_value"]) == 0.01 and not math.isnan(float(tags["gate_champion_value"]))


def test_worker_names_this_process_and_a_dead_one(tmp_path):
    assert worker().endswith(f":{os.getpid()}") and not dead_here(worker())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    host = worker().rpartition(":")[0]
    assert dead_here(f"{host}:{child.pid}")
    assert not dead_here(f"another-machine:{child.pid}") and not dead_here(None)


def _wait_for(predicate, proc, timeout=300.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the command ended (code {proc.returncode}) before the state was reached")
        found = predicate()
        if found:
            return found
        time.sleep(0.2)
    pytest.fail("timed out")


TUNING = """
[tuning]
objective = "relative.classifier"
metric = "log_loss"
inner_folds = 2
n_estimators = [200, 400]
num_leaves = [3, 7]
"""


@pytest.mark.slow
@pytest.mark.parametrize("command", ["train", "tune"])
def test_runs_of_a_killed_command_are_marked_failed_by_the_next_command(command, tmp_path):
    path = write_experiment(tmp_path, "tiny", seeds=(11, 12))
    path.write_text(path.read_text() + TUNING)
    home = tmp_path / "home"
    env = {**os.environ, "REGIME_HOME": str(home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    argv = [REGIME, command, str(path), "--home", str(home)] + (["--trials", "500"] if command == "tune" else [])
    # the runs that are open while it works: the parent and, for train, its backtest child
    wanted = {"train tiny", "backtest"} if command == "train" else {"tune tiny-relative.classifier"}
    with open(tmp_path / "log.txt", "w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        def running():
            # read the store's file directly: opening it with MLflow while the command migrates it would race
            try:
                with closing(sqlite3.connect(f"file:{home / 'mlflow.db'}?mode=ro", uri=True, timeout=1)) as db:
                    rows = db.execute("SELECT name, run_uuid FROM runs WHERE status = 'RUNNING'").fetchall()
            except sqlite3.Error:
                return None
            names = dict(rows)
            return names if wanted <= set(names) else None

        found = _wait_for(running, proc)
        store.configure(home)
        exp_id = MlflowClient().get_run(found[next(iter(wanted))]).info.experiment_id
        assert store.fail_abandoned(exp_id) == []  # a live process's runs are left alone
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    client = MlflowClient()
    runs = [client.get_run(found[name]) for name in sorted(wanted)]
    assert all(run.info.status == "RUNNING" for run in runs)  # nobody closed them
    worker = client.get_run(found[f"{command} tiny" if command == "train" else "tune tiny-relative.classifier"])
    assert worker.data.tags["worker"].endswith(f":{proc.pid}")
    # what the next command does first: train and tune open the experiment, ui lists every experiment
    if command == "train":
        store.experiment_id(home, "tiny")
    else:
        store.model_training_experiments(home)
    for run in runs:
        after = client.get_run(run.info.run_id)
        assert after.info.status == "FAILED" and after.info.end_time is not None
        note = after.data.tags["mlflow.note.content"]
        assert note.startswith("**Marked FAILED** by regime at ") and f"process {worker.data.tags['worker']}" in note
    assert store.fail_abandoned(exp_id) == []  # done once


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the workers' parent-death signal is Linux's")
def test_a_killed_backtest_leaves_no_fold_workers_behind(tmp_path):
    """SIGKILL of a command fitting folds in worker processes ends the workers too: forked, they hold their own end
    of the task queue and used to wait on it forever (two 280 MB orphans per killed `regime train`)."""
    path = write_experiment(tmp_path, "tiny", seeds=(11, 12))
    env = {**os.environ, "REGIME_HOME": str(tmp_path / "home")}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.Popen([REGIME, "backtest", str(path), "--jobs", "2"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    workers: list[int] = []
    try:
        workers += _wait_for(lambda: process_tree(proc.pid)[1:], proc, timeout=120)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 15
        while any(process_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [w for w in workers if process_alive(w)]
    finally:
        if proc.poll() is None:
            proc.kill()
        for w in workers:  # whatever the outcome, no orphan outlives the test
            if process_alive(w):
                os.kill(w, signal.SIGKILL)
