"""MLflow runs written by a child process (tracking/writer.py): in order, reused, errors raised, Ctrl-C and kills."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from contextlib import closing

import mlflow
import pytest
from mlflow.exceptions import MlflowException

from smallcap_regime.tracking import store, writer

from helpers import process_alive


def _runs(home, name="e"):
    store.configure(home)
    client = mlflow.MlflowClient()
    runs = client.search_runs([store.experiment_id(home, name)])
    parents = {r.info.run_name: r for r in runs if "mlflow.parentRunId" not in r.data.tags}
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return client, parents, children


def test_sessions_write_nested_runs_in_one_reused_process(home):
    with writer.session(home, "e", "tune a", {"optuna_study": "a"}, start_ms=1_000) as runs:
        runs.log(params={"tuning.seed": 7})
        for number in range(3):
            runs.child(f"trial {number}", {"state": "COMPLETE"}, {"num_leaves": 8 + number},
                       [("mse_fold", 0.1 * number, 5_000, step) for step in range(2)] + [("mse", 0.2, 5_000, 0)],
                       "FINISHED", 2_000 + number, 3_000 + number)
        runs.log(metrics=[("best_mse", 0.2, 6_000, 0)], tags={"best_trial": "0"}, dicts={"best.json": {"x": 1}})
        first = runs._child.process.pid
    with writer.session(home, "e", "tune b", {"optuna_study": "b"}) as runs:
        runs.child("trial 0", {}, {}, [], "FAILED", None, None)
        assert runs._child.process.pid == first  # started once per process

    client, parents, children = _runs(home)
    a = parents["tune a"]
    assert (a.info.status, a.info.start_time, a.data.params, a.data.tags["optuna_study"]) == (
        "FINISHED", 1_000, {"tuning.seed": "7"}, "a")
    assert a.data.metrics == {"best_mse": 0.2} and a.data.tags["best_trial"] == "0"
    assert mlflow.artifacts.load_dict(f"{a.info.artifact_uri}/best.json") == {"x": 1}
    # the caller's run tags, as mlflow.start_run in the caller would give them
    assert a.data.tags["mlflow.source.name"] == sys.argv[0] or a.data.tags["mlflow.source.name"].endswith(
        os.path.basename(sys.argv[0]))
    trials = sorted((r for r in children if r.data.tags["mlflow.parentRunId"] == a.info.run_id),
                    key=lambda r: r.info.start_time)
    assert [r.info.run_name for r in trials] == ["trial 0", "trial 1", "trial 2"]
    assert [(r.info.start_time, r.info.end_time, r.info.status) for r in trials] == [
        (2_000 + n, 3_000 + n, "FINISHED") for n in range(3)]
    assert [r.data.params for r in trials] == [{"num_leaves": str(8 + n)} for n in range(3)]
    history = client.get_metric_history(trials[2].info.run_id, "mse_fold")
    assert [(m.step, m.value) for m in history] == [(0, pytest.approx(0.2)), (1, pytest.approx(0.2))]
    (b_trial,) = [r for r in children if r.data.tags["mlflow.parentRunId"] == parents["tune b"].info.run_id]
    assert b_trial.info.status == "FAILED"


def test_concurrent_sessions_get_their_own_process(home):
    with writer.session(home, "e", "one", {}) as one, writer.session(home, "e", "two", {}) as two:
        one.child("trial 0", {}, {"x": 1}, [], "FINISHED", None, None)
        two.child("trial 0", {}, {"x": 2}, [], "FINISHED", None, None)
        assert one._child is not two._child
    assert len(writer._idle) == 1 and not (one._child.alive() and two._child.alive())  # one kept, the spare ends
    _, parents, children = _runs(home)
    assert {p.info.status for p in parents.values()} == {"FINISHED"} and len(children) == 2


def test_the_writers_first_error_is_raised_in_the_caller_and_later_messages_are_dropped(home):
    with pytest.raises(MlflowException, match="Changing param values is not allowed"):
        with writer.session(home, "e", "tune a", {}) as runs:
            runs.log(params={"seed": 1})
            runs.log(params={"seed": 2})  # MLflow refuses to change a param
            deadline = time.monotonic() + 60
            while runs.error is None and time.monotonic() < deadline:
                runs._receive(0.1)
            with pytest.raises(MlflowException, match="Changing param values"):
                runs.check()  # between trials: the caller stops after its current one
            runs.child("trial 0", {}, {}, [], "FINISHED", None, None)
    _, parents, children = _runs(home)
    assert parents["tune a"].info.status == "RUNNING" and children == []  # nothing written after the error
    with writer.session(home, "e", "tune b", {}) as runs:  # the process serves the next session
        runs.log(params={"seed": 1})
    assert _runs(home)[1]["tune b"].info.status == "FINISHED"


def test_a_killed_writer_is_one_clear_error_and_the_next_session_starts_another(home):
    with pytest.raises(writer.WriterGone, match=r"the process writing the MLflow runs \(pid \d+\) ended with exit "
                                                r"code -9; runs it had not written yet are not recorded"):
        with writer.session(home, "e", "tune a", {}) as runs:
            os.kill(runs._child.process.pid, signal.SIGKILL)
            runs._child.process.wait(timeout=30)
            runs.child("trial 0", {}, {}, [], "FINISHED", None, None)
            killed = runs._child
    assert killed not in writer._idle  # a dead process is not reused
    with writer.session(home, "e", "tune b", {}) as runs:
        runs.child("trial 0", {}, {}, [], "FINISHED", None, None)
    assert _runs(home)[1]["tune b"].info.status == "FINISHED"


def _finished(home) -> list[str] | None:
    """Names of the FINISHED runs, read from the store's file (MLflow opening it while the writer migrates it would
    race)."""
    try:
        with closing(sqlite3.connect(f"file:{home / 'mlflow.db'}?mode=ro", uri=True, timeout=1)) as db:
            return [name for (name,) in db.execute("SELECT name FROM runs WHERE status = 'FINISHED'")]
    except sqlite3.Error:
        return None


CALLER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from smallcap_regime.tracking import writer

    with writer.session(Path(sys.argv[1]), "e", "tune a", {}) as runs:
        runs.child("trial 0", {}, {"x": 1}, [("mse", 0.5, 0, 0)], "FINISHED", None, None)
        print(runs._child.process.pid, flush=True)
        time.sleep(120)
""")


@pytest.mark.parametrize("how", ["ctrl-c", "kill"])
def test_ctrl_c_ends_the_session_as_killed_and_the_writer_ends_with_its_caller(home, how):
    # its own process group, as a command in a terminal: Ctrl-C reaches the caller and the writer alike
    proc = subprocess.Popen([sys.executable, "-c", CALLER, str(home)], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        child = int(proc.stdout.readline())
        if how == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)
            assert proc.wait(timeout=60) != 0
        else:
            deadline = time.monotonic() + 60
            while _finished(home) != ["trial 0"] and time.monotonic() < deadline:
                time.sleep(0.1)
            proc.kill()
            proc.wait(timeout=60)
        deadline = time.monotonic() + 30
        while process_alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not process_alive(child)  # no orphan
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    _, parents, children = _runs(home)
    if how == "ctrl-c":  # the caller ends the session: everything sent is written, the parent run KILLED
        assert [r.data.params for r in children] == [{"x": "1"}]
        assert parents["tune a"].info.status == "KILLED"
    else:  # the writer ends with its caller, as a thread would: the next command marks the runs failed
        assert [r.data.params for r in children] == [{"x": "1"}]
        assert parents["tune a"].info.status == "RUNNING"
