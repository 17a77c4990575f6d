"""Helpers for the package's worker processes (the backtest's fold workers, the MLflow run writer)."""

from __future__ import annotations

import ctypes
import os
import sys


def die_with_parent(parent: int | None = None) -> None:
    """In a child process: end (SIGTERM) when the parent ends, even by SIGKILL (Linux; a no-op elsewhere).

    A child blocked on a queue from its parent would otherwise wait on it forever, holding its memory.
    ``parent``: the parent's pid as the parent gave it (a started, not forked, child may run this after the
    parent ended); default the current parent, for a forked child calling this first thing."""
    if not sys.platform.startswith("linux"):
        return
    import signal

    parent = os.getppid() if parent is None else parent
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent ended before the request took effect
        os._exit(1)
