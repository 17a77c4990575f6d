"""Where Optuna studies live: a journal file under the home (local workers) or a database shared by machines."""

from __future__ import annotations

import functools
import importlib.util
import json
import logging
import os
import threading
import time
import warnings
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import distribution_to_json
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock
from optuna.storages.journal._storage import JournalOperation, JournalStorageReplayResult
from optuna.trial import FrozenTrial, TrialState

from ..env import env_number
from ..errors import RegimeError, StoreUnavailable
from ..home import tuning_dir
from ..urls import redact_url, scrub, split_userinfo

# grace period of a trial's heartbeat, in heartbeat intervals: a loaded machine may delay one beat, not three
GRACE_BEATS = 3
POSTGRES_EXTRA = "pip install '.[postgres]' in the checkout (or pip install 'psycopg[binary]')"
log = logging.getLogger("smallcap_regime.tuning")
#: Seconds a database storage operation keeps retrying a lost connection (``$REGIME_TUNING_STORAGE_RETRY_S``):
#: long enough for a PostgreSQL restart or fail-over, short enough that a worker facing a dead server stops.
RETRY_BUDGET_S = 60.0
#: Key of the PostgreSQL advisory lock held while a worker creates Optuna's tables (any fixed 64-bit number).
SCHEMA_LOCK_KEY = 0x5EC1_7E6E_0F7A
#: RDBStorage methods that talk to the database; each is retried on a lost connection (the heartbeat aside). Each
#: runs one transaction, rolled back when the connection drops, so running it again does it once.
RETRIED = ("create_new_study", "delete_study", "set_study_user_attr", "set_study_system_attr",
           "get_study_id_from_name", "get_study_name_from_id", "get_study_directions", "get_study_user_attrs",
           "get_study_system_attrs", "get_trial_user_attrs", "get_trial_system_attrs", "get_all_studies",
           "create_new_trial", "set_trial_param", "get_trial_param", "set_trial_state_values",
           "set_trial_intermediate_value", "set_trial_user_attr", "set_trial_system_attr",
           "get_trial_id_from_study_id_trial_number", "get_trial", "get_all_trials", "get_best_trial",
           "_get_stale_trial_ids",
           # what Optuna's cache in front of an RDBStorage (``_CachedStorage``) calls directly
           "_create_new_trial", "_set_trial_param", "_get_best_trial_id", "_get_trials")


def connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` is a lost or refused database connection rather than a bad statement.

    Its causes and contexts count: Optuna wraps SQLAlchemy's errors in ``StorageInternalError``, and a statement
    in a session whose connection dropped mid-transaction raises ``PendingRollbackError`` with the lost
    connection as its context (Optuna's "falling back to a slower alternative" query does so after a restart).
    """
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    error: BaseException | None = exc
    for _ in range(6):  # a short chain: the error, Optuna's wrapper, SQLAlchemy's, the driver's
        if error is None:
            return False
        if isinstance(error, (OperationalError, InterfaceError)):
            return True
        if isinstance(error, DBAPIError) and error.connection_invalidated:
            return True
        error = error.__cause__ or error.__context__
    return False


#: PostgreSQL error codes of a server going down or coming up: admin_shutdown, crash_shutdown, cannot_connect_now.
RESTARTING_CODES = frozenset({"57P01", "57P02", "57P03"})


def server_restarting(exc: BaseException) -> bool:
    """Whether ``exc`` (or its cause) is the database server saying it is shutting down or starting up."""
    for error in (exc, exc.__cause__):
        orig = getattr(error, "orig", None)
        if (getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)) in RESTARTING_CODES:
            return True
    return False


def _retried(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(self: RetryingRDBStorage, *args: Any, **kwargs: Any) -> Any:
        from optuna.exceptions import UpdateFinishedTrialError

        deadline, delay, retried = time.monotonic() + self.retry_budget_s, 0.5, False
        while True:
            try:
                return method(self, *args, **kwargs)
            except UpdateFinishedTrialError:
                # the connection dropped after the server committed the first attempt: the trial is already
                # finished as asked (its state is written once), so the retry has nothing left to do
                if retried and method.__name__ == "set_trial_state_values":
                    return True
                raise
            except Exception as exc:
                if not connection_lost(exc):
                    raise
                retried = True
                if time.monotonic() + delay > deadline:
                    raise StoreUnavailable(
                        f"storage {self.label}: the database cannot be reached (retried for "
                        f"{self.retry_budget_s:g} s, $REGIME_TUNING_STORAGE_RETRY_S); the study is unchanged by the "
                        "failed step: run the same command again once the database is back") from None
                log.warning("storage %s: database connection lost; retrying for up to %.0f s more", self.label,
                            deadline - time.monotonic())
                time.sleep(delay)
                delay = min(2 * delay, 5.0)
    return call


class RetryingRDBStorage(RDBStorage):
    """Optuna's RDBStorage whose database operations retry a lost connection for a bounded time.

    A PostgreSQL restart drops every connection: Optuna reports the next statement as ``StorageInternalError``
    ("... e.g. exceeding max length"), which ends a worker mid-study. Each operation runs in its own transaction,
    rolled back on error, so running it again once the server is back is safe. Beyond the budget the worker stops
    with one line naming the storage (:class:`StoreUnavailable`, exit 1).
    """

    def __init__(self, url: str, *args: Any, label: str, retry_budget_s: float, **kwargs: Any) -> None:
        self.label, self.retry_budget_s = label, retry_budget_s
        super().__init__(url, *args, **kwargs)

    def record_heartbeat(self, trial_id: int) -> None:
        # the heartbeat thread must not die with a traceback; a missed beat is caught up by the next one
        try:
            super().record_heartbeat(trial_id)
        except Exception as exc:
            if not connection_lost(exc):
                raise
            log.warning("storage %s: heartbeat of trial %d not recorded (database connection lost)", self.label,
                        trial_id)


for _name in RETRIED:
    setattr(RetryingRDBStorage, _name, _retried(getattr(RDBStorage, _name)))


@contextmanager
def schema_lock(url: str) -> Iterator[None]:
    """Serialise Optuna's table creation between workers opening one PostgreSQL database at the same moment.

    Two concurrent ``CREATE TABLE`` of the same name collide on PostgreSQL's catalogue (``duplicate key value
    violates unique constraint "pg_type_typname_nsp_index"``); under a session advisory lock the second worker
    finds the tables made. Other databases: nothing (a collision there is retried by :func:`open_storage`).
    """
    if not url.split("://", 1)[0].startswith("postgresql"):
        yield
        return
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    engine = sqlalchemy.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
            try:
                yield
            finally:
                conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": SCHEMA_LOCK_KEY})
    finally:
        engine.dispose()


#: Journal operations (Optuna's on-disk op codes) written without an fsync of their own: a trial's creation,
#: parameters, fold reports and attributes. They reach the disk with the next fsync'd record (at the latest the
#: trial's end state); a study change and a trial's state change are fsync'd as before.
UNSYNCED_OPS = frozenset({4, 5, 7, 8, 9})  # CREATE_TRIAL, SET_TRIAL_PARAM, SET_TRIAL_INTERMEDIATE_VALUE, *_ATTR


class _Deferral(threading.local):
    """Per thread: the depth of its :meth:`JournalFile.one_fsync` blocks and whether a record awaits their fsync."""

    depth = 0
    unsynced = False


class JournalFile(JournalFileBackend):
    """Optuna's journal file (same format, same lock file, so stock Optuna processes and optuna-dashboard share it)
    that fsyncs once per trial instead of once per record.

    Optuna's :class:`~optuna.storages.journal.JournalFileBackend` fsyncs every append: ~15 per trial (the trial,
    each parameter, each fold's report, the worker attribute, the end state), which on an ext4 disk costs more
    than the trial's bookkeeping itself. Here each append is still written under the lock in one ``write`` and
    flushed to the operating system before the lock is released, so other processes read it at once and it
    survives the writing process being killed; only the records in :data:`UNSYNCED_OPS` skip their own fsync and
    reach the disk with the trial's end state (an fsync covers the whole file). A power loss or kernel crash
    during a trial can therefore lose that running trial's records, which a crashed worker's trial would be
    failed and replaced for anyway; a finished trial and a study change are on disk when the call returns (or,
    for the writes of a :meth:`one_fsync` block, when the block ends).
    """

    def __init__(self, file_path: str) -> None:
        self.path = file_path
        self.lock = JournalFileSymlinkLock(file_path)  # Optuna's default lock: interoperates with its writers
        self.local = _Deferral()
        super().__init__(file_path, lock_obj=self.lock)

    def read_logs(self, log_number_from: int) -> Generator[dict[str, Any], None, None]:
        # nothing written since the last read (the usual case for a single worker): one stat, not an open and read
        end = getattr(self, "_log_number_offset", {}).get(log_number_from)
        if end is not None and os.stat(self.path).st_size == end:
            return
        yield from super().read_logs(log_number_from)

    def append_logs(self, logs: list[dict[str, Any]] | Callable[[], list[dict[str, Any]]]) -> None:
        """Append ``logs`` in one write under the lock; a callable is called under the lock for them."""
        self.lock.acquire()
        try:
            if callable(logs):
                logs = logs()
            data = "".join(json.dumps(entry, separators=(",", ":")) + "\n" for entry in logs).encode("utf-8")
            sync = any(entry.get("op_code") not in UNSYNCED_OPS for entry in logs)
            if sync and self.local.depth:
                self.local.unsynced, sync = True, False
            with open(self.path, "ab") as f:
                f.write(data)
                f.flush()
                if sync:
                    os.fsync(f.fileno())
        finally:
            self.lock.release()

    @contextmanager
    def one_fsync(self) -> Iterator[None]:
        """This thread's study-level writes in the block (a new study's settings, the best trial's record) fsync'd
        once, when the block ends, instead of one by one; other threads' writes are not deferred."""
        local = self.local
        local.depth += 1
        try:
            yield
        finally:
            local.depth -= 1
            if not local.depth and local.unsynced:
                local.unsynced = False
                with open(self.path, "ab") as f:
                    os.fsync(f.fileno())


#: Whether this Optuna has the journal internals :class:`StudyJournal` holds a trial's records with (Optuna 4).
CAN_HOLD = (all(hasattr(JournalStorage, name) for name in ("_write_log", "_sync_with_backend"))
            and all(hasattr(JournalStorageReplayResult, name)
                    for name in ("_apply_set_trial_param", "_apply_set_trial_intermediate_value")))


class StudyJournal(JournalStorage):
    """Optuna's journal storage on a :class:`JournalFile` (``file``) that writes a running trial's parameters and
    fold reports together with its end state.

    Optuna's journal storage appends each record on its own, under the file's lock, and reads it back: ~15 lock
    cycles per trial, 10% of a plain Optuna loop's speed. Here a trial's parameters and reports are applied to this
    process's view
    at once (the sampler, the pruner and ``trial.params`` see them as before) and written with the trial's end
    state in one append. Other processes see a running trial without them until it ends; a worker killed
    mid-trial leaves its trial RUNNING without them (it is failed and replaced as before). The trial's creation
    and user attributes (the worker's name, which the stale-trial check reads) are written at once. Where Optuna's
    internals this uses are missing (:data:`CAN_HOLD`), each record is written at once, as by Optuna.
    """

    def __init__(self, path: str) -> None:
        self.file = JournalFile(path)
        self.held: dict[int, list[dict[str, Any]]] = {}
        super().__init__(self.file)

    def _hold(self, op_code: int, log: dict[str, Any], apply: Callable[[dict[str, Any]], None]) -> None:
        log = {"op_code": op_code, "worker_id": self._replay_result.worker_id, **log}
        with self._thread_lock:
            self._sync_with_backend()  # a trial failed meanwhile by another worker raises, as Optuna's own write
            apply(log)
            self.held.setdefault(log["trial_id"], []).append(log)

    def set_trial_param(self, trial_id: int, param_name: str, param_value_internal: float,
                        distribution: Any) -> None:
        if not CAN_HOLD:
            return super().set_trial_param(trial_id, param_name, param_value_internal, distribution)
        self._hold(JournalOperation.SET_TRIAL_PARAM,
                   {"trial_id": trial_id, "param_name": param_name, "param_value_internal": param_value_internal,
                    "distribution": distribution_to_json(distribution)},
                   self._replay_result._apply_set_trial_param)

    def set_trial_intermediate_value(self, trial_id: int, step: int, intermediate_value: float) -> None:
        if not CAN_HOLD:
            return super().set_trial_intermediate_value(trial_id, step, intermediate_value)
        self._hold(JournalOperation.SET_TRIAL_INTERMEDIATE_VALUE,
                   {"trial_id": trial_id, "step": step, "intermediate_value": intermediate_value},
                   self._replay_result._apply_set_trial_intermediate_value)

    def _write_log(self, op_code: int, extra_fields: dict[str, Any]) -> None:
        log = {"op_code": op_code, "worker_id": self._replay_result.worker_id, **extra_fields}
        ends = op_code == JournalOperation.SET_TRIAL_STATE_VALUES and TrialState(log["state"]).is_finished()
        held = self.held.pop(log["trial_id"], None) if ends else None
        if not held:
            self.file.append_logs([log])
            return

        def records() -> list[dict[str, Any]]:
            # under the file's lock: the trial cannot be finished by another worker before the records land
            self._sync_with_backend()
            trial = self._replay_result._trials.get(log["trial_id"])
            return [*held, log] if trial is not None and not trial.state.is_finished() else [log]

        self.file.append_logs(records)


@contextmanager
def one_fsync(storage: BaseStorage) -> Iterator[None]:
    """Run the block's writes to ``storage`` with one fsync at its end (a journal file; other storages: as is)."""
    if isinstance(storage, StudyJournal):
        with storage.file.one_fsync():
            yield
    else:
        yield


def default_storage(home: Path) -> str:
    """The default journal file, ``<home>/tuning/journal.log``."""
    return str(tuning_dir(home) / "journal.log")


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def database_url(url: str) -> str:
    """The SQLAlchemy URL to open for ``url``, as people write it.

    ``postgres://`` (the libpq/Heroku spelling SQLAlchemy refuses) and ``postgresql://`` go to the installed driver:
    psycopg 3 (the ``postgres`` extra; SQLAlchemy 2.1's default for ``postgresql://``), else psycopg2. A password
    holding an unencoded ``@`` is percent-encoded, so ``user:p@ss@host`` reaches ``host`` with password ``p@ss``.

    Raises
    ------
    RegimeError
        A PostgreSQL URL and no driver installed; the message says what to install.
    """
    scheme, _, rest = url.partition("://")
    if scheme in ("postgres", "postgresql"):
        if _installed("psycopg"):
            scheme = "postgresql+psycopg"
        elif _installed("psycopg2"):
            scheme = "postgresql+psycopg2"
        else:
            raise RegimeError(f"storage {redact_url(url)}: no PostgreSQL driver is installed; {POSTGRES_EXTRA}")
    split = split_userinfo(rest)
    if split is not None:
        rest = split[0].replace("@", "%40") + split[1]
    return f"{scheme}://{rest}"


def report_stale(study: optuna.Study, trial: FrozenTrial) -> None:
    """Stale trial callback (Optuna's heartbeats, or a dead local journal worker): say which trial was failed."""
    log.warning("study %s: trial %d of worker %s was abandoned (worker killed or lost); marked failed, a new "
                "trial replaces it", study.study_name, trial.number, trial.user_attrs.get("worker", "unknown"))


def open_storage(url: str | None, home: Path, heartbeat: int | None = None) -> BaseStorage:
    """Open the Optuna storage holding the studies.

    Parameters
    ----------
    url : str or None
        None: the default journal file under ``<home>/tuning``. A path without ``://``: a journal file there (for
        example on a shared file system). ``postgresql://user:pass@host/db`` (or another SQLAlchemy database URL,
        see :func:`database_url`): a database that workers on several machines share.
    home : Path
        Home dir.
    heartbeat : int, optional
        Database storage only: seconds between the heartbeats of a running trial. A trial whose worker has sent
        none for ``GRACE_BEATS`` intervals (killed, machine lost) is marked failed by the next worker that looks.

    Raises
    ------
    RegimeError
        A SQLite URL (not safe for parallel workers), a missing driver, or the database cannot be opened; the
        message never shows the password.
    """
    if url is None or "://" not in url:
        path = Path(url).expanduser().resolve() if url else Path(default_storage(home))
        path.parent.mkdir(parents=True, exist_ok=True)
        return StudyJournal(str(path))
    shown = redact_url(url)
    if url.split("://", 1)[0].split("+", 1)[0] == "sqlite":
        raise RegimeError(
            f"storage {shown}: SQLite is not supported for tuning: it locks the whole database on every write, so "
            "parallel workers fail with 'database is locked' (and its locking is unreliable on network file "
            "systems). Omit --storage to use the journal file under $REGIME_HOME/tuning (safe for several local "
            "processes), or use postgresql://... to share a study between machines."
        )
    from sqlalchemy.exc import IntegrityError, SQLAlchemyError

    beats: dict[str, Any] = {} if heartbeat is None else {
        "heartbeat_interval": heartbeat, "grace_period": GRACE_BEATS * heartbeat,
        "heartbeat_stale_trial_callback": report_stale}
    budget = env_number("REGIME_TUNING_STORAGE_RETRY_S", RETRY_BUDGET_S)
    try:
        sqlalchemy_url = database_url(url)
        collisions, restart_deadline, delay = 0, None, 0.5
        while True:
            try:
                with schema_lock(sqlalchemy_url), warnings.catch_warnings():
                    # heartbeats are "experimental" in Optuna since 2.9
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    # pool_pre_ping: long trials leave connections idle; the server may have closed them meanwhile
                    return RetryingRDBStorage(sqlalchemy_url, engine_kwargs={"pool_pre_ping": True}, label=shown,
                                              retry_budget_s=budget, **beats)
            except IntegrityError:  # another worker created the same table at the same moment: it exists now
                collisions += 1
                if collisions == 3:
                    raise
                time.sleep(0.2 * collisions)
            except SQLAlchemyError as exc:
                # a server that says it is restarting is waited for, as a lost connection is once open; a refused
                # connection or a wrong password from the start is an error at once
                if restart_deadline is None and server_restarting(exc):
                    restart_deadline = time.monotonic() + budget
                if (restart_deadline is None or not connection_lost(exc)
                        or time.monotonic() + delay > restart_deadline):
                    raise
                log.warning("storage %s: the database is restarting; retrying for up to %.0f s more", shown,
                            restart_deadline - time.monotonic())
                time.sleep(delay)
                delay = min(2 * delay, 5.0)
    except ImportError as exc:
        hint = "; or write postgresql://... for psycopg 3" if url.split("://", 1)[0].endswith("+psycopg2") else ""
        raise RegimeError(f"storage {shown}: the database driver is not installed ({scrub(str(exc), url)}); "
                          f"{POSTGRES_EXTRA}{hint}") from None
    except (SQLAlchemyError, ValueError) as exc:  # bad URL or unreachable server: report without the password
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        error = StoreUnavailable if connection_lost(exc) else RegimeError  # an outage exits 1, a bad URL 2
        raise error(f"storage {shown}: cannot open ({type(exc).__name__}: {scrub(first, url)})") from None
    raise AssertionError("unreachable")  # the loop returns or raises


def storage_label(url: str | None, home: Path) -> str:
    """Where the studies are, for messages and MLflow tags (passwords removed)."""
    if url is None:
        return default_storage(home)
    return redact_url(url) if "://" in url else str(Path(url).expanduser().resolve())
