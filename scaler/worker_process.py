"""What every worker process runs first, kept free of heavy imports.

A `spawn`ed worker unpickles its initializer before anything else: were it in a module that imports
statsforecast, the worker would spend its first seconds importing with nothing tying it to its
parent, and a server SIGKILLed meanwhile would leave it orphaned. Here it asks Linux at once to kill
it when its parent dies (PR_SET_PDEATHSIG), then lowers its CPU priority.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys

WORKER_NICENESS = 10
"""Workers run at a lower CPU priority: on a busy node the scheduler serves the RPCs first."""
_PR_SET_PDEATHSIG = 1


def die_with(parent_pid: int) -> None:
    """Ask Linux to SIGKILL this process when its parent dies; exit now if it already has."""
    if sys.platform == "linux":
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)


def start_worker(parent_pid: int) -> None:
    """The workers' initializer: die with the parent, then a lower priority (where the container
    allows one)."""
    die_with(parent_pid)
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICENESS)
