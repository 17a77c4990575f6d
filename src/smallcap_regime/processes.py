"""Helpers for the worker processes the package forks (the backtest's fold workers)."""

from __future__ import annotations

import ctypes
import os
import sys


def die_with_parent() -> None:
    """In a forked child: end (SIGTERM) when the parent ends, even by SIGKILL (Linux; a no-op elsewhere).

    A child blocked on a queue from its parent would otherwise wait on it forever, holding its memory."""
    if not sys.platform.startswith("linux"):
        return
    import signal

    parent = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent ended before the request took effect
        os._exit(1)
