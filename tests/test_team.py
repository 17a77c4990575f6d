"""Team scale on real engines: `regime tune` workers sharing a PostgreSQL study, and `regime train`/`serve`/`predict`
against a real `mlflow server` whose store is PostgreSQL.

The server comes from tests/conftest.py's ``postgres_server`` (CI's cluster, or a throwaway one started here); the
URLs carry a password, which must never reach a process's output or an MLflow tag. Passwords go through the
environment only, as the README's team setup says.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import mlflow
import optuna
import pytest
from optuna.trial import TrialState

from smallcap_regime import tuning
from smallcap_regime.errors import RegimeError
from smallcap_regime.urls import redact_url
from test_tuning import write_experiment as write_tuning_experiment

from helpers import write_experiment

pytestmark = pytest.mark.slow  # PostgreSQL and MLflow servers, several workers

REGIME = str(Path(sys.executable).with_name("regime"))
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "REGIME_TUNING_STORAGE")}
    return {**env, "REGIME_HOME": str(home), "COLUMNS": "200", **extra}


def _password(url: str) -> str:
    secret = urlsplit(url).password
    assert secret, url
    return secret


def _wait_http(url: str, proc: subprocess.Popen, what: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited ({proc.returncode}): {proc.stderr.read()[-2000:] if proc.stderr else ''}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not answer {url} within {timeout_s:.0f} s")
        time.sleep(0.5)


def _stop(proc: subprocess.Popen) -> None:
    """Stop a server started in its own session, with its children (SIGKILL if it lingers: it is throwaway)."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def test_postgresql_urls_work_as_the_readme_writes_them(postgres_db, home):
    secret = _password(postgres_db)
    rest = postgres_db.split("://", 1)[1]
    for scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        storage = tuning.open_storage(f"{scheme}://{rest}", home)
        optuna.create_study(study_name=scheme, storage=storage)
    assert set(optuna.get_all_study_names(tuning.open_storage(postgres_db, home))) == {
        "postgresql", "postgres", "postgresql+psycopg"}

    # a password holding '@', ':' and '/' unencoded, as people paste it, reaches the right host as written
    import psycopg

    with psycopg.connect(postgres_db, autocommit=True) as conn:
        conn.execute("CREATE ROLE regime_pasted LOGIN SUPERUSER PASSWORD 'p@ss:w/rd'")
    try:
        pasted = postgres_db.replace(f"postgres:{secret}@", "regime_pasted:p@ss:w/rd@")
        assert optuna.get_all_study_names(tuning.open_storage(pasted, home))
    finally:
        with psycopg.connect(postgres_db, autocommit=True) as conn:
            conn.execute("DROP ROLE regime_pasted")

    wrong = postgres_db.replace(f":{secret}@", ":not-the-password@")
    with pytest.raises(RegimeError, match=r"storage postgresql://postgres:\*\*\*@127\.0\.0\.1:\d+/regime_test_\w+: "
                                          r"cannot open \(OperationalError: .*password authentication failed"):
        tuning.open_storage(wrong, home)


def _running_trial_of(storage: optuna.storages.BaseStorage, study: str, pids: set[int]) -> tuple[int, int] | None:
    """(trial number, worker pid) of a RUNNING trial of one of ``pids``, if any."""
    try:
        loaded = optuna.load_study(study_name=study, storage=storage)
    except KeyError:  # not created yet
        return None
    for trial in loaded.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid = int(trial.user_attrs.get("worker", ":0").rpartition(":")[2])
        if pid in pids:
            return trial.number, pid
    return None


def _kill_mid_trial(storage_url: str, study: str, workers: list[subprocess.Popen]) -> tuple[int, int]:
    """SIGKILL a worker while it evaluates a trial; returns (trial number, pid).

    The worker is stopped (SIGSTOP) first and its trial checked again, so the kill surely lands mid-trial.
    """
    storage = tuning.open_storage(storage_url, Path("."))
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        found = _running_trial_of(storage, study, {w.pid for w in workers})
        if found is not None:
            number, pid = found
            os.kill(pid, signal.SIGSTOP)
            if _running_trial_of(storage, study, {pid}) == (number, pid):
                os.kill(pid, signal.SIGKILL)
                next(w for w in workers if w.pid == pid).wait(timeout=30)
                return number, pid
            os.kill(pid, signal.SIGCONT)
        time.sleep(0.1)
    pytest.fail("no worker was seen running a trial within 180 s")


@pytest.mark.slow
@pytest.mark.timeout(600)  # three processes and a heartbeat grace period on a shared 2-core machine
def test_three_tune_workers_share_a_postgres_study_and_replace_a_killed_ones_trial(postgres_db, home, tmp_path):
    experiment = write_tuning_experiment(tmp_path)
    env = _env(home, REGIME_TUNING_STORAGE=postgres_db)  # the password travels in the environment only
    command = [REGIME, "tune", str(experiment), "--trials", "6", "--study", "team", "--heartbeat", "1"]
    workers = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(3)]
    try:
        killed_trial, killed_pid = _kill_mid_trial(postgres_db, "team", workers)
        outputs = {w.pid: w.communicate(timeout=240) for w in workers if w.pid != killed_pid}
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    for pid, (out, err) in outputs.items():
        assert next(w for w in workers if w.pid == pid).returncode == 0, err
        assert _password(postgres_db) not in out + err
        assert "Warning" not in err  # the heartbeats work with ask/tell: nothing for the user to worry about

    study = optuna.load_study(study_name="team", storage=tuning.open_storage(postgres_db, home))
    finished = study.get_trials(states=FINISHED)
    assert len(finished) == 6
    assert len({tuple(sorted(t.params.items())) for t in finished}) == 6  # no parameter set evaluated twice
    assert not study.get_trials(states=(TrialState.RUNNING,))
    dead = study.trials[killed_trial]
    assert dead.state == TrialState.FAIL and dead.user_attrs["worker"].endswith(f":{killed_pid}")
    assert study.metric_names == ["mse"]
    logs = "".join(err for _, err in outputs.values())
    assert f"trial {killed_trial} of worker {dead.user_attrs['worker']} was abandoned (worker killed or lost)" \
        in logs

    # the study's storage is recorded on each worker's MLflow runs, without the password
    local = mlflow.MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    runs = local.search_runs([local.get_experiment_by_name("tiny").experiment_id])
    assert {r.data.tags["optuna_storage"] for r in runs if "optuna_storage" in r.data.tags} == {
        redact_url(postgres_db)}
    assert not any(_password(postgres_db) in str(r.data.tags) + str(r.data.params) for r in runs)


def _mlflow_server(store_url: str, port: int, artifacts: Path, home: Path) -> subprocess.Popen:
    """A real `mlflow server` on 127.0.0.1:``port`` with its store at ``store_url``, up and answering. The store URL
    (with its password) goes through the environment, not argv (which `ps` shows)."""
    env = {**_env(home), "MLFLOW_BACKEND_STORE_URI": store_url, "MLFLOW_DISABLE_TELEMETRY": "true",
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])}
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                             "--workers", "1", "--artifacts-destination", artifacts.as_uri()],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        _wait_http(f"http://127.0.0.1:{port}/health", proc, "mlflow server", timeout_s=180)
    except BaseException:
        _stop(proc)
        raise
    return proc


@pytest.fixture
def mlflow_server(postgres_db, tmp_path):
    """A real `mlflow server` on 127.0.0.1 with its store in PostgreSQL and artifacts in a local directory."""
    artifacts = tmp_path / "server-artifacts"
    port = _free_port()
    proc = _mlflow_server(postgres_db, port, artifacts, tmp_path)
    try:
        yield f"http://127.0.0.1:{port}", artifacts
    finally:
        _stop(proc)


@pytest.mark.slow
@pytest.mark.timeout(600)  # two trainings at once, a model server and three predictions
def test_train_on_two_machines_into_one_tracking_server_then_serve_and_predict_its_champion(
        mlflow_server, postgres_db, tiny_experiment, tmp_path):
    url, artifacts = mlflow_server
    homes = [tmp_path / f"machine{i}" for i in range(3)]
    # the second machine trains other seeds: an identical model would reuse the first one's version
    other = write_experiment(tmp_path / "machine1-experiments", "tiny", seeds=(31, 32))
    trains = [subprocess.Popen([REGIME, "train", str(exp), "--force", "--tracking-uri", url],
                               env=_env(h), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for h, exp in zip(homes[:2], (tiny_experiment, other), strict=True)]
    for proc in trains:
        out, err = proc.communicate(timeout=280)
        assert proc.returncode == 0, err[-3000:]
        assert "registered models:/smallcap-regime/" in out

    client = mlflow.MlflowClient(tracking_uri=url, registry_uri=url)
    versions = client.search_model_versions("name='smallcap-regime'")
    assert sorted(int(v.version) for v in versions) == [1, 2]
    champion = client.get_model_version_by_alias("smallcap-regime", "champion")
    experiment = client.get_experiment_by_name("tiny")
    runs = client.search_runs([experiment.experiment_id], "attributes.run_name = 'train tiny forced'")
    assert {r.info.run_id for r in runs} == {v.run_id for v in versions}
    assert all(r.info.artifact_uri.startswith("mlflow-artifacts:") for r in runs)  # stored by the server ...
    assert any(artifacts.rglob("MLmodel"))  # ... in its artifacts destination
    for home in homes[:2]:  # nothing tracked locally
        assert not (home / "mlflow.db").exists() and not any((home / "mlartifacts").rglob("*"))

    # a third machine: MLFLOW_TRACKING_URI alone finds the champion, in process and through `regime serve`
    remote = _env(homes[2], MLFLOW_TRACKING_URI=url)
    features = ["--experiment", str(tiny_experiment)]  # the champion's experiment file lives on this machine
    predicted = subprocess.run([REGIME, "predict", *features], env=remote, capture_output=True, text=True,
                               timeout=200)
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    assert f"champion (version {champion.version})" in predicted.stdout and "regime:" in predicted.stdout
    port = _free_port()
    serve = subprocess.Popen([REGIME, "serve", "--port", str(port)], env=remote, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _wait_http(f"http://127.0.0.1:{port}/ping", serve, "regime serve", timeout_s=180)
        asked = subprocess.run([REGIME, "predict", *features, "--server", f"http://127.0.0.1:{port}"], env=remote,
                               capture_output=True, text=True, timeout=200)
    finally:
        _stop(serve)
    assert asked.returncode == 0, asked.stderr[-3000:]
    assert "regime:" in asked.stdout and f"version {champion.version} (loaded by the server)" in asked.stdout

    ui = subprocess.run([REGIME, "ui"], env=remote, capture_output=True, text=True, timeout=60)
    assert ui.returncode == 0 and f"the MLflow tracking server is the UI: open {url}" in ui.stdout

    secret = _password(postgres_db)
    for proc in [predicted, asked, ui]:
        assert secret not in proc.stdout + proc.stderr
    assert not any(secret in str(r.data.tags) + str(r.data.params) for r in runs)


def test_a_champion_alias_set_at_the_same_moment_by_another_training_is_retried(monkeypatch):
    from mlflow.exceptions import MlflowException

    from smallcap_regime.tracking import registry, store

    class Server:  # answers like the tracking server whose read-then-insert lost the race
        def __init__(self, failures: int) -> None:
            self.failures, self.calls = failures, []

        def set_registered_model_alias(self, name: str, alias: str, version: str) -> None:
            self.calls.append((name, alias, version))
            if len(self.calls) <= self.failures:
                raise MlflowException('duplicate key value violates unique constraint "registered_model_alias_pk"')

    monkeypatch.setattr(store.time, "sleep", lambda s: None)
    server = Server(failures=1)
    registry.set_champion(server, "smallcap-regime", "2")
    assert server.calls == [("smallcap-regime", "champion", "2")] * 2
    with pytest.raises(MlflowException, match="registered_model_alias_pk"):
        registry.set_champion(Server(failures=3), "smallcap-regime", "2")
