"""MLflow's first-time store creation under the home's lock: training and tuning open the store through
`store.experiment_id`, and concurrent first uses of a fresh home must not race MLflow's schema migration."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # concurrent MLflow store creation in subprocesses


def test_concurrent_first_mlflow_use_on_a_fresh_home(tmp_path):
    """Two first uses at once used to crash in MLflow's schema migration ("table ... already exists")."""
    home = tmp_path / "home"
    home.mkdir()
    code = ("import sys; from pathlib import Path; from smallcap_regime.tracking.store import experiment_id; "
            "print(experiment_id(Path(sys.argv[1]), 'race'))")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(home)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [(p.wait(timeout=120), *p.communicate()) for p in procs]

    for status, _out, err in outputs:
        assert status == 0, err[-3000:]
    assert len({out.strip() for _, out, _ in outputs}) == 1, "one experiment, created once"
