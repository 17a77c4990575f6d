"""Inter-process locks inside a home dir (``<home>/.locks/``), so that concurrent commands take turns.

``data.lock`` serialises writers of the data cache (`regime data pull`, `regime data import-short-interest`);
``mlflow.lock`` serialises the first-time creation of the MLflow store, whose schema migration is not safe to run
twice at once. Readers never lock: the manifest is replaced atomically and never points at a missing file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from .env import env_number
from .errors import ConfigError, HomeBusyError

LOCK_TIMEOUT_ENV = "REGIME_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT_S = 600.0
# One FileLock object per lock file: the same process re-entering a lock (a pull writing many datasets) must count
# up on one object, since a second flock on a fresh descriptor would wait for ourselves.
_LOCKS: dict[Path, FileLock] = {}
# A forked child starts with no lock objects (filelock refuses one inherited across fork) and keeps the parent's
# referenced: collecting one would unlock the descriptor it shares with the parent, releasing the parent's lock.
_INHERITED: list[FileLock] = []


def _forget_inherited_locks() -> None:
    _INHERITED.extend(_LOCKS.values())
    _LOCKS.clear()


os.register_at_fork(after_in_child=_forget_inherited_locks)


def lock_timeout() -> float:
    """Seconds to wait for a busy home before giving up (``$REGIME_LOCK_TIMEOUT``, default 600)."""
    value = env_number(LOCK_TIMEOUT_ENV, DEFAULT_LOCK_TIMEOUT_S)
    if value < 0:
        raise ConfigError(f"{LOCK_TIMEOUT_ENV}={value:g} must be >= 0 seconds")
    return value


@contextmanager
def home_lock(home: Path, name: str, purpose: str, *, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold ``<home>/.locks/<name>.lock`` for the duration of the block (re-entrant within a process).

    Parameters
    ----------
    home : the home dir.
    name : lock name (``data``, ``mlflow``).
    purpose : what the lock protects, for messages ("the data cache").
    on_wait : called once with a message when another process holds the lock and we start waiting.

    Raises
    ------
    HomeBusyError
        If the lock is still held by another process after ``$REGIME_LOCK_TIMEOUT`` seconds.
    """
    path = (home / ".locks" / f"{name}.lock").resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = _LOCKS.setdefault(path, FileLock(path, thread_local=False))
    timeout = lock_timeout()
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if on_wait:
            on_wait(f"{home} is busy ({purpose} is locked by another process); waiting up to {timeout:g} s")
        try:
            lock.acquire(timeout=timeout)
        except Timeout:
            raise HomeBusyError(
                f"{home} is busy: another process has held {path} ({purpose}) for over {timeout:g} s; "
                f"retry when it has finished, or raise {LOCK_TIMEOUT_ENV}"
            ) from None
    try:
        yield
    finally:
        lock.release()
