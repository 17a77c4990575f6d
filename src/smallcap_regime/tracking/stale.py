"""Runs left RUNNING by a killed ``regime train`` or ``regime tune``: found and marked FAILED, with a note.

Every parent run a command opens carries the tag ``worker`` = ``host:pid`` of its process. A run still RUNNING
whose worker is a process of this machine that no longer exists was abandoned (killed, crashed, machine
rebooted); its nested runs (``backtest``, per-target models, trials) went with it. Runs of other machines cannot
be checked from here and are left alone.
"""

from __future__ import annotations

import os
import socket
import time

WORKER_TAG = "worker"
NOTE_TAG = "mlflow.note.content"


def worker() -> str:
    """This process, as recorded on its runs and trials (``host:pid``)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def dead_here(name: str | None) -> bool:
    """Whether ``host:pid`` names a process of this machine that no longer exists."""
    host, _, pid = (name or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine's worker (or none recorded): cannot tell
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def fail_abandoned_runs(client, experiment_id: str) -> list[str]:
    """Mark the experiment's abandoned RUNNING runs (and their RUNNING nested runs) FAILED; returns their ids.

    Each gets a note (appended to its description) saying when and why, and the tag ``regime.abandoned``.
    """
    running = client.search_runs([experiment_id], "attributes.status = 'RUNNING'", max_results=5000)
    dead = {r.info.run_id: r.data.tags.get(WORKER_TAG, "") for r in running if dead_here(r.data.tags.get(WORKER_TAG))}
    added = True
    while added:  # nested runs carry no worker: they die with their parent (any depth)
        added = False
        for run in running:
            parent = run.data.tags.get("mlflow.parentRunId")
            if run.info.run_id not in dead and parent in dead:
                dead[run.info.run_id] = dead[parent]
                added = True
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    by_id = {r.info.run_id: r for r in running}
    for run_id, process in dead.items():
        note = (f"**Marked FAILED** by regime at {stamp}: process {process} ended (killed or crashed) while this "
                "run was RUNNING; its metrics and artifacts may be incomplete.")
        old = by_id[run_id].data.tags.get(NOTE_TAG)
        client.set_tag(run_id, NOTE_TAG, f"{old}\n\n{note}" if old else note)
        client.set_tag(run_id, "regime.abandoned", f"process {process} gone, noticed {stamp}")
        client.set_terminated(run_id, status="FAILED")
    return list(dead)
