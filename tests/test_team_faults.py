"""Team faults on real engines: a tracking server lost mid-training, PostgreSQL restarted under tuning workers,
tuning workers opening a new database at the same moment, a dead tracking store.

Every server here is started and stopped by the test itself (`mlflow server` on PostgreSQL, a PostgreSQL cluster of
the test's own when it must be stopped); short retry budgets come through the documented environment variables so
that each outage ends in seconds. Passwords travel in the environment only and must never be printed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import mlflow
import optuna
import pytest
from optuna.trial import TrialState

from test_team import REGIME, _env, _free_port, _mlflow_server, _password, _stop
from test_tuning import write_experiment as write_tuning_experiment

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
#: A small MLflow HTTP budget: a refused connection fails after ~2 s instead of minutes.
SHORT_MLFLOW = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "5", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
                "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}


def _one_error_line(err: str) -> str:
    """The single `error:` line of a command's stderr (no traceback around it)."""
    assert "Traceback" not in err, err[-3000:]
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err[-3000:]
    return lines[0]




@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_tracking_server_lost_mid_training_ends_in_one_line_and_its_runs_are_failed_later(
        postgres_db, tiny_experiment, tmp_path):
    port, artifacts, home = _free_port(), tmp_path / "artifacts", tmp_path / "home"
    url = f"http://127.0.0.1:{port}"
    server = _mlflow_server(postgres_db, port, artifacts, tmp_path)
    client = mlflow.MlflowClient(tracking_uri=url)
    train = subprocess.Popen([REGIME, "train", str(tiny_experiment), "--force", "--tracking-uri", url],
                             env=_env(home, **SHORT_MLFLOW), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        deadline = time.monotonic() + 240
        while not (experiment := client.get_experiment_by_name("tiny")) or len(
                client.search_runs([experiment.experiment_id])) < 2:  # the parent and its backtest run
            assert train.poll() is None, train.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "training opened no runs"
            time.sleep(0.5)
        _stop(server)  # the tracking server goes away while the backtest runs
        lost_at = time.monotonic()
        out, err = train.communicate(timeout=180)
        took = time.monotonic() - lost_at
        print(f"training exited {took:.1f} s after its tracking server stopped")  # shown by pytest -s
    finally:
        if train.poll() is None:
            train.kill()
        if server.poll() is None:
            _stop(server)
    assert train.returncode == 1, err[-3000:]
    line = _one_error_line(err)
    assert line.startswith(f"error: the tracking server {url} cannot be reached (connection refused, after MLflow's "
                           "retries: 5 s per request, 1 retries;"), line
    assert line.endswith("the 2 run(s) it left RUNNING are marked FAILED by the next command that reaches the "
                         "store"), line
    assert took < 90, f"{took:.0f} s after the server stopped"

    server = _mlflow_server(postgres_db, port, artifacts, tmp_path)  # back, on the same store
    try:
        runs = client.search_runs([experiment.experiment_id])
        assert {r.info.status for r in runs} == {"RUNNING"}
        # the next command on this home and store (here one that finds no model) fails them first
        later = subprocess.run([REGIME, "predict", "--tracking-uri", url], env=_env(home, **SHORT_MLFLOW),
                               capture_output=True, text=True, timeout=200)
        assert later.returncode == 2 and "no model 'smallcap-regime' registered" in later.stderr, later.stderr
        assert {r.info.status for r in client.search_runs([experiment.experiment_id])} == {"FAILED"}
        assert not json_pending(home)
    finally:
        _stop(server)


def json_pending(home: Path) -> dict:
    import json

    path = home / "unfinished-runs.json"
    return json.loads(path.read_text()) if path.exists() else {}


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("store", ["http://u:SECRETpw42@127.0.0.1:{port}", "postgresql://u:SECRETpw42@127.0.0.1:{port}/db"])
def test_predict_against_a_dead_tracking_store_is_one_line_within_the_budget(store, tmp_path):
    uri = store.format(port=_free_port())  # nothing listens there
    started = time.monotonic()
    done = subprocess.run([REGIME, "predict", "--tracking-uri", uri], env=_env(tmp_path / "home", **SHORT_MLFLOW,
                                                                               REGIME_TRACKING_DB_ATTEMPTS="2"),
                          capture_output=True, text=True, timeout=100)
    took = time.monotonic() - started
    print(f"predict against dead {uri.split(':', 1)[0]} store: exit after {took:.1f} s")  # shown by pytest -s
    assert done.returncode == 1, done.stderr[-3000:]
    line = _one_error_line(done.stderr)
    shown = uri.replace("SECRETpw42", "***")
    kind = "tracking server" if uri.startswith("http") else "tracking store"
    assert line.startswith(f"error: the {kind} {shown} cannot be reached ("), line
    assert "SECRETpw42" not in done.stdout + done.stderr
    assert took < 60, f"{took:.0f} s"


# --- PostgreSQL under tuning workers --------------------------------------------------------------------------------


@pytest.fixture
def own_postgres():
    """A PostgreSQL cluster of this test's own (it stops and restarts it); yields (url, base dir)."""
    from pgcluster import ClusterError, start, stop

    base = Path(tempfile.mkdtemp(prefix="regime-pg-own-"))
    try:
        url = start(base)
    except ClusterError as exc:
        shutil.rmtree(base, ignore_errors=True)
        if os.environ.get("REGIME_TEST_POSTGRES_URL"):
            pytest.fail(f"cannot start a PostgreSQL cluster: {exc}")
        pytest.skip(f"cannot start a PostgreSQL cluster ({exc})")
    try:
        yield url, base
    finally:
        stop(base)
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_tune_workers_ride_out_a_postgresql_restart_and_stop_in_one_line_when_it_stays_down(own_postgres, tmp_path):
    from pgcluster import _run, resume, server_bin

    url, base = own_postgres
    experiment = write_tuning_experiment(tmp_path)
    home = tmp_path / "home"
    env = _env(home, REGIME_TUNING_STORAGE=url, REGIME_TUNING_STORAGE_RETRY_S="45")
    command = [REGIME, "tune", str(experiment), "--trials", "4", "--study", "restart", "--heartbeat", "2"]
    workers = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    stop = [str(server_bin() / "pg_ctl"), "-D", str(base / "data"), "-m", "fast", "-w", "stop"]
    try:
        deadline = time.monotonic() + 300
        while True:  # until the study holds a finished trial
            assert all(w.poll() is None for w in workers), [w.communicate()[1][-2000:] for w in workers]
            try:
                study = optuna.load_study(study_name="restart", storage=url)
                if study.get_trials(states=FINISHED):
                    break
            except KeyError:
                pass
            assert time.monotonic() < deadline, "no trial finished"
            time.sleep(0.5)
        _run(stop)
        time.sleep(8)  # down for 8 s, within the 45 s budget
        resume(base)
        outputs = [w.communicate(timeout=300) for w in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    for worker, (out, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err[-3000:]
        assert "Traceback" not in err and _password(url) not in out + err
    study = optuna.load_study(study_name="restart", storage=url)
    assert len(study.get_trials(states=FINISHED)) >= 4
    assert not study.get_trials(states=(TrialState.RUNNING,))

    # down for good: a worker gives up after its budget with one line naming the storage
    _run(stop)
    started = time.monotonic()
    done = subprocess.run([*command[:4], "6", *command[5:]], env={**env, "REGIME_TUNING_STORAGE_RETRY_S": "3"},
                          capture_output=True, text=True, timeout=120)
    took = time.monotonic() - started
    assert done.returncode == 1, done.stderr[-3000:]
    line = _one_error_line(done.stderr)
    shown = url.replace(_password(url), "***")
    assert line.startswith(f"error: storage {shown}: cannot open (OperationalError: "), line
    assert _password(url) not in done.stdout + done.stderr
    assert took < 60


@pytest.mark.timeout(300)
def test_workers_opening_a_new_database_at_the_same_moment_all_get_the_storage(postgres_server, tmp_path):
    """Six threads released together (tighter than processes: before the schema lock 5 of 6 failed every time on
    `duplicate key value violates unique constraint "pg_type_typname_nsp_index"`)."""
    import threading
    import uuid

    import psycopg

    from smallcap_regime.tuning import open_storage

    from conftest import _with_database

    for _ in range(2):
        name = f"regime_race_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = _with_database(postgres_server, name)
        barrier, errors, studies = threading.Barrier(6), [], []

        def work() -> None:
            barrier.wait()  # noqa: B023 - the threads are joined within the iteration
            try:
                studies.append(len(open_storage(url, tmp_path).get_all_studies()))  # noqa: B023 - joined below
            except Exception as exc:  # noqa: BLE001 - collected and shown
                errors.append(repr(exc))  # noqa: B023

        threads = [threading.Thread(target=work) for _ in range(6)]
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=120)
        finally:
            with psycopg.connect(postgres_server, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        assert errors == [] and studies == [0] * 6
