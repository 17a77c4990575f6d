"""MLflow runs written by a child process, in order, while the caller works on.

Writing one run to MLflow's SQLite store costs ~10 ms of Python (SQLAlchemy). On a thread that time holds the
interpreter lock the caller needs: a tuning trial takes ~65 ms on one core, and its run written alongside made
`regime tune` 0.82x as fast as a plain Optuna loop (issue 24). A child process writes the runs on another core.

One child serves a process's sessions one after the other, so its start-up (~1.5 s of imports, overlapping the
caller's first trials) is paid once per process; a second concurrent session gets its own child. A session is a
parent run and its nested runs (:class:`Session`). Each session sends the caller's environment, arguments and
working directory, so that the child writes where, and tags as, the caller would (``MLFLOW_TRACKING_URI``, the
source name, the user).

The child runs in its own session, so a terminal's Ctrl-C reaches only the caller, which ends the session with the
status it chooses (KILLED). The child exits when the caller's end of the pipe closes (the caller exited), and
with the caller if it is killed (Linux), as a thread would: a run created after the next command marked the
killed caller's runs failed would stay RUNNING.

Examples
--------
>>> with session(home, "quickstart", "tune s", tags={"optuna_study": "s"}) as runs:  # doctest: +SKIP
...     runs.log(params={"tuning.seed": 7})
...     runs.child("trial 0", {}, {"num_leaves": 15}, [("mse", 0.01, 0, 0)], "FINISHED", start_ms, end_ms)
"""

from __future__ import annotations

import atexit
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from ..errors import RegimeError

#: The child's command: the caller's import path first, then the serving loop on the inherited socket.
BOOT = ("import sys; sys.path[:0] = sys.argv[3:]; "
        "from smallcap_regime.tracking.writer import serve; serve(int(sys.argv[1]), int(sys.argv[2]))")
#: A metric as sent: (key, value, timestamp in ms, step).
MetricRow = tuple[str, float, int, int]


class WriterGone(RegimeError):
    """The child process ended without being asked (killed, out of memory)."""


class _Child:
    """One writer process and the caller's end of its socket."""

    def __init__(self) -> None:
        ours, theirs = Pipe(duplex=True)
        paths = [p for p in sys.path if p]
        self.process = subprocess.Popen(
            [sys.executable, "-c", BOOT, str(theirs.fileno()), str(os.getpid()), *paths], pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,  # stdout may be a command's JSON: never written
            start_new_session=True)  # Ctrl-C in a terminal reaches the caller's group only: the caller ends sessions
        theirs.close()
        self.conn: Connection = ours
        self.send_lock = threading.Lock()

    def alive(self) -> bool:
        return self.process.poll() is None and not self.conn.closed

    def gone(self) -> WriterGone:
        code = self.process.poll()
        how = "is not answering" if code is None else f"ended with exit code {code}"
        return WriterGone(f"the process writing the MLflow runs (pid {self.process.pid}) {how}; runs it had not "
                          "written yet are not recorded")

    def close(self) -> None:
        self.conn.close()


_idle: list[_Child] = []
_idle_lock = threading.Lock()


def _take() -> _Child:
    with _idle_lock:
        while _idle:
            child = _idle.pop()
            if child.alive():
                return child
            child.close()
    return _Child()


def _give_back(child: _Child) -> None:
    """Keep ``child`` for the next session; one idle process is enough (a spare one ends)."""
    with _idle_lock:
        if child.alive() and not any(other.alive() for other in _idle):
            _idle.append(child)
            return
    child.close()


def warm() -> None:
    """Start a writer process now, if none is idle, so that its start-up overlaps the caller's own."""
    with _idle_lock:
        if any(child.alive() for child in _idle):
            return
    child = _Child()
    with _idle_lock:
        _idle.append(child)


@atexit.register
def _close_idle() -> None:
    # the children exit on the closed socket; an idle child has nothing left to write
    with _idle_lock:
        for child in _idle:
            child.close()
        _idle.clear()


class Session:
    """A parent run and its nested runs, written by a child process in the order sent.

    Methods return at once. :meth:`check` raises the first error the child met (later messages of the session
    are then dropped); ending the ``with`` block of :func:`session` waits until everything sent is written.
    """

    def __init__(self, child: _Child) -> None:
        self._child = child
        self.error: BaseException | None = None
        self.opened = False  # the parent run exists
        self._closed = False

    def _send(self, *message: Any) -> None:
        with self._child.send_lock:
            try:
                self._child.conn.send(message)
            except (BrokenPipeError, ConnectionResetError, OSError):
                if self.error is None:
                    self.error = self._child.gone()

    def log(self, *, params: dict[str, Any] | None = None, metrics: list[MetricRow] | None = None,
            tags: dict[str, str] | None = None, dicts: dict[str, Any] | None = None) -> None:
        """Params, metrics, tags and JSON artifacts (``{file name: object}``) on the parent run."""
        self._send("log", params or {}, metrics or [], tags or {}, dicts or {})

    def child(self, run_name: str, tags: dict[str, str], params: dict[str, Any], metrics: list[MetricRow],
              status: str, start_ms: int | None, end_ms: int | None) -> None:
        """A finished nested run, timed ``start_ms`` to ``end_ms`` (as the work ran, not as it was written)."""
        self._send("child", run_name, tags, params, metrics, status, start_ms, end_ms)

    def _receive(self, timeout: float) -> bool:
        """Read the child's answers for up to ``timeout`` s; True once the session's end is confirmed."""
        conn = self._child.conn
        try:
            while conn.poll(timeout):
                kind, payload = conn.recv()
                if kind == "error" and self.error is None:
                    self.error = _error(payload)
                elif kind == "opened":
                    self.opened = True
                elif kind == "closed":
                    return True
                timeout = 0
        except (EOFError, OSError):
            if self.error is None:
                self.error = self._child.gone()
            self._closed = True
            return True
        return False

    def check(self) -> None:
        """Raise the child's first error, if it reported one. The first call waits until the parent run exists
        (the child's start-up overlaps the caller's work until then), so that a store that cannot be written
        stops the caller after one unit of work, not after all of it."""
        while self.error is None and not self._closed and not self.opened:
            if not self._receive(1.0) and not self.opened and not self._child.alive():
                self.error = self._child.gone()
        if self.error is None and not self._closed:
            self._receive(0)
        if self.error is not None:
            raise self.error

    def close(self, status: str) -> None:
        """End the parent run with ``status`` and wait until every run sent is written."""
        self._send("close", status)
        while not self._closed:
            if self._receive(1.0):
                self._closed = True
            elif not self._child.alive():
                self.error = self.error or self._child.gone()
                self._closed = True


def _error(payload: tuple[bytes | None, str]) -> BaseException:
    pickled, text = payload
    if pickled is not None:
        try:
            return pickle.loads(pickled)
        except Exception:
            pass
    return RegimeError(text)


@contextmanager
def session(home: Path, experiment: str, run_name: str, tags: dict[str, str],
            start_ms: int | None = None) -> Iterator[Session]:
    """A parent run ``run_name`` in the MLflow experiment ``experiment`` of ``home`` (created if needed), written
    by a child process; the block's outcome sets its status (FINISHED, KILLED on Ctrl-C, else FAILED).

    The block's own error goes first; otherwise leaving it raises the child's first error.
    """
    child = _take()
    runs = Session(child)
    runs._send("open", str(home), experiment, run_name, tags,
               int(time.time() * 1000) if start_ms is None else start_ms, dict(os.environ), list(sys.argv),
               os.getcwd())
    status = "FAILED"
    try:
        yield runs
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        runs.close(status)
        _give_back(child)
        if status == "FINISHED":
            runs.check()


# ------------------------------------------------------------------------------------------------ child side
class _Writer:
    """The child's side of one session."""

    def __init__(self, home: str, experiment: str, run_name: str, tags: dict[str, str], start_ms: int,
                 env: dict[str, str], argv: list[str], cwd: str) -> None:
        os.environ.clear()
        os.environ.update(env)
        sys.argv[:] = argv  # MLflow's source tags read them
        try:
            os.chdir(cwd)
        except OSError:
            pass
        from mlflow import MlflowClient
        from mlflow.tracking.context.registry import resolve_tags
        from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

        from .store import experiment_id

        self.experiment = experiment_id(Path(home), experiment)  # configures the tracking store first
        self.client = MlflowClient()
        # the tags mlflow.start_run gives a run (user, source, ...) and, below, a nested run
        parent = self.client.create_run(self.experiment, start_time=start_ms, run_name=run_name,
                                        tags=resolve_tags({**tags, MLFLOW_RUN_NAME: run_name}))
        self.parent = parent.info.run_id
        self.child_tags = resolve_tags({MLFLOW_PARENT_RUN_ID: self.parent})

    def log(self, params: dict[str, Any], metrics: list[MetricRow], tags: dict[str, str],
            dicts: dict[str, Any]) -> None:
        from mlflow.entities import Metric, Param, RunTag

        for name, obj in dicts.items():
            self.client.log_dict(self.parent, obj, name)
        self.client.log_batch(self.parent, params=[Param(k, str(v)) for k, v in params.items()],
                              metrics=[Metric(*row) for row in metrics],
                              tags=[RunTag(k, v) for k, v in tags.items()])

    def child(self, run_name: str, tags: dict[str, str], params: dict[str, Any], metrics: list[MetricRow],
              status: str, start_ms: int | None, end_ms: int | None) -> None:
        from mlflow.entities import Metric, Param

        run = self.client.create_run(self.experiment, start_time=start_ms, tags={**self.child_tags, **tags},
                                     run_name=run_name)
        self.client.log_batch(run.info.run_id, metrics=[Metric(*row) for row in metrics],
                              params=[Param(k, str(v)) for k, v in params.items()])
        self.client.set_terminated(run.info.run_id, status, end_time=end_ms)

    def close(self, status: str) -> None:
        self.client.set_terminated(self.parent, status)


def _report(conn: Connection, exc: BaseException) -> None:
    text = f"{type(exc).__name__}: {exc}" if not isinstance(exc, RegimeError) else str(exc)
    try:
        pickled: bytes | None = pickle.dumps(exc)
    except Exception:
        pickled = None
    conn.send(("error", (pickled, text)))


def serve(fd: int, parent: int) -> None:
    """The child's loop: sessions from the socket ``fd``, one after the other, until it closes or the caller
    (pid ``parent``) ends."""
    from ..processes import die_with_parent

    # a killed caller's runs are not written on: its thread, before, ended with it too (and a run created after
    # the next command marked the caller's runs failed would stay RUNNING)
    die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # an interrupt is the caller's: it ends the session
    conn = Connection(fd)
    writer: _Writer | None = None
    failed = False
    while True:
        try:
            kind, *args = conn.recv()
        except (EOFError, OSError):
            return
        if kind == "open":
            writer, failed = None, False
        try:
            if kind == "open":
                writer = _Writer(*args)
                conn.send(("opened", None))
            elif not failed and writer is not None:
                getattr(writer, kind)(*args)
        except Exception as exc:
            failed = True
            _report(conn, exc)
        if kind == "close":
            conn.send(("closed", None))
