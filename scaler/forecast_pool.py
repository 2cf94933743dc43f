"""Model fitting in worker processes, so that it never stalls the event loop.

StatsForecast's fitting holds the GIL: a refit in a thread of the server stalls every RPC for its
duration, while in a separate process GetMetrics latency is unaffected. Workers are started with
`spawn` (forking a process that runs gRPC is unsafe) at a lower CPU priority, so that on a node short
of cores the answers to KEDA come before the fits. Workers die with the server: `close()` kills
them (a running fit is abandoned rather than waited for), and on Linux each asks the kernel to kill
it when its parent dies (`scaler.worker_process`), so a SIGKILLed server leaves no worker (nor,
with them gone, the multiprocessing resource tracker) behind. A semaphore of the pool's size queues refits,
so many targets due at once are fitted a few at a time instead of piling onto the executor.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import time
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import NamedTuple

from forecasting.forecaster import Forecaster
from forecasting.prepare import Series
from scaler.worker_process import start_worker


class FitOutcome(NamedTuple):
    """A fitted forecaster (a copy, back from the worker) and what the fit did."""

    forecaster: Forecaster
    model: str
    reason: str
    seconds: float


def fit_job(forecaster: Forecaster, series: Series, budget_s: float) -> FitOutcome:
    """Runs in a worker: fit and send the fitted state back."""
    started = time.perf_counter()
    result = forecaster.fit(series, budget_s=budget_s)
    return FitOutcome(forecaster, forecaster.model, result.reason, time.perf_counter() - started)


class ForecastPool:
    """Fits forecasters on an executor (worker processes by default), `workers` at a time."""

    def __init__(self, workers: int, *, executor: Executor | None = None, budget_s: float = 30.0) -> None:
        if workers < 1:
            raise ValueError(f"workers is {workers}; it must be >= 1")
        self.workers = workers
        self.budget_s = budget_s
        self._executor = executor
        self._slots: asyncio.Semaphore | None = None

    def _ensure(self) -> tuple[Executor, asyncio.Semaphore]:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=start_worker,
                initargs=(os.getpid(),),
            )
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.workers)
        return self._executor, self._slots

    async def fit(self, forecaster: Forecaster, series: Series) -> FitOutcome:
        """Fit `forecaster` on `series` in a worker; waits for a free worker first."""
        executor, slots = self._ensure()
        async with slots:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(executor, fit_job, forecaster, series, self.budget_s)

    def close(self) -> None:
        """Stop the workers now: queued fits are cancelled, running ones die with their process."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        # The executor's processes (a private attribute until Python 3.14's terminate_workers()).
        processes = list(getattr(executor, "_processes", {}).values())
        executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            with contextlib.suppress(OSError, ValueError):
                process.kill()
        for process in processes:
            with contextlib.suppress(OSError, ValueError):
                process.join(timeout=1.0)
