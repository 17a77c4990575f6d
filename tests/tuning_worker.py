"""A tuning worker process for tests/test_tuning.py: joins a study on a shared storage, like `regime tune`.

Usage: python tuning_worker.py EXPERIMENT HOME PANEL_PICKLE TRIALS STUDY BARRIER_DIR N_WORKERS

Start-up (imports, MLflow) takes seconds and varies with machine load, so a fast worker could finish the whole study
before a slow one joins. Two waits make every worker take part: a file barrier before tuning, and, after each
trial, a pause until the study holds trials from all N_WORKERS processes (at most 60 s).
"""

from __future__ import annotations

import os
import pickle
import sys
import time
from pathlib import Path

import optuna

from smallcap_regime.experiment import load_experiment
from smallcap_regime.tuning import open_storage, tune


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        if time.monotonic() > deadline:
            sys.exit(f"timed out waiting for {what}")
        time.sleep(0.05)


def main(argv: list[str]) -> None:
    experiment, home, panel_file, trials, study, barrier, workers = argv
    panel = pickle.loads(Path(panel_file).read_bytes())
    exp = load_experiment(experiment)
    barrier_dir, n_workers = Path(barrier), int(workers)
    (barrier_dir / f"ready-{os.getpid()}").touch()
    wait_until(lambda: len(list(barrier_dir.iterdir())) >= n_workers, "the other workers to start")

    def workers_seen() -> int:
        shared = optuna.load_study(study_name=study, storage=open_storage(None, Path(home)))
        return len({t.user_attrs.get("worker") for t in shared.get_trials(deepcopy=False)} - {None})

    tune(exp, Path(home), trials=int(trials), study=study, panel=panel,
         on_trial=lambda _: wait_until(lambda: workers_seen() >= n_workers, "the other workers' trials"))


if __name__ == "__main__":
    main(sys.argv[1:])
