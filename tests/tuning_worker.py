"""A tuning worker process for tests/test_tuning.py: joins a study on a shared storage, like `regime tune`.

Usage: python tuning_worker.py EXPERIMENT HOME PANEL_PICKLE TRIALS STUDY BARRIER_DIR N_WORKERS PAUSE_S

Waits at a file barrier until all N_WORKERS processes are ready (imports and the panel take seconds, and a late
starter would otherwise find the study finished), then tunes. PAUSE_S is slept after each trial so that trials
interleave between workers.
"""

from __future__ import annotations

import os
import pickle
import sys
import time
from pathlib import Path

from smallcap_regime.experiment import load_experiment
from smallcap_regime.tuning import tune


def main(argv: list[str]) -> None:
    experiment, home, panel_file, trials, study, barrier, workers, pause = argv
    panel = pickle.loads(Path(panel_file).read_bytes())
    exp = load_experiment(experiment)
    barrier_dir = Path(barrier)
    (barrier_dir / f"ready-{os.getpid()}").touch()
    deadline = time.monotonic() + 60
    while len(list(barrier_dir.iterdir())) < int(workers):
        if time.monotonic() > deadline:
            sys.exit("barrier: the other workers never became ready")
        time.sleep(0.05)
    tune(exp, Path(home), trials=int(trials), study=study, panel=panel, on_trial=lambda _: time.sleep(float(pause)))


if __name__ == "__main__":
    main(sys.argv[1:])
