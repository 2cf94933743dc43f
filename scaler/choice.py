"""Never worse than not forecasting: each target serves the pipeline its own traffic shows cheaper. Pure.

With `pipeline: auto` (the default) a predictive or shadow target computes, at every step, the served
bound of each candidate, all with the same quantile and each with its own online calibration
(`scaler.calibration.BoundCalibration`):

- `forecast`: the seasonal ensemble's bound over the lead time;
- `no_forecast`: the same pipeline with the forecast replaced by the rate observed now (Little's law
  and the Poisson spread of the requests in service, as `forecast`; only with `rateQuery`), its band
  how far the target's own rate has risen within a lead time (`scaler.leadtime.RiseMargin`);
- `reactive`: the observed value itself (no margin).

With `burstReserve: true` the forecast and no_forecast bounds carry a reserve held after clustered
bursts (`scaler.bursts`), each candidate its own, judged on its own bound without the reserve.

Each candidate is scored as what is served is: covered when the observed peak over the lead time
stayed within its bound, and its cost is the mean value it would have sent KEDA (at least the
observed value), over the newest `window` scored steps. This is a rolling backtest of each pipeline on
the target's own recent traffic. A candidate is eligible once it has `MIN_EVALUATIONS` scores and its
coverage is within `COVERAGE_SLACK` below the quantile; the cheapest eligible one is served, and the
one served changes only when another is cheaper by more than `SWITCH_MARGIN` (so the answer does not
flip on noise). Until a candidate other than the forecast is eligible and cheaper, the forecast is
served, as it was before this choice existed; while the forecast has no bound (no fit yet: a target
without a day of history), no_forecast's bound is served in its place, not the bare observed value
(`serving` says which was).

Limits, plainly: the candidates not served are scored on traffic shaped by the one served (an early
scale-up keeps the queue short for every candidate), which flatters them; the switch margin and the
coverage slack keep that from deciding on its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

from scaler.bursts import BURST_BAND, HORIZON_S, BurstReserve, Reserve
from scaler.calibration import GAIN, BoundCalibration, LeadWindows

CANDIDATES = ("forecast", "no_forecast", "reactive")
PIPELINES = ("auto", *CANDIDATES)
"""`pipeline`'s values: `auto` chooses among the candidates; any other serves that one."""
MIN_EVALUATIONS = 240
"""Scores a candidate needs before it can be chosen (an hour at a 15 s step)."""
COVERAGE_SLACK = 0.03
"""How far below the quantile a candidate's coverage may be and still be chosen."""
SWITCH_MARGIN = 0.02
"""How much cheaper another candidate must be for the one served to change."""


class Parts(NamedTuple):
    """One candidate's bound before correction: the forecast mean's peak and the bound above it."""

    centre: float
    bound: float


@dataclass(slots=True)
class _Candidate:
    calibration: BoundCalibration
    burst: BurstReserve | None
    """Its burst reserve (`scaler.bursts`): None for `reactive`, or with `burstReserve: false`."""
    cost: float = math.nan
    """The mean value it would have sent over its scored steps: a running mean up to `window` of
    them, then exponentially weighted with that time constant (constant memory)."""
    scored: int = 0


class _Entry(NamedTuple):
    """What one candidate served for a window."""

    value: float
    """Its served bound: the corrected bound plus the burst reserve."""
    cost: float
    """The value it would have sent (at least the observed one)."""
    bound: float
    """The corrected bound without the reserve, which bursts are judged against."""
    centre: float
    """The bound's centre (the forecast mean's peak), in the same units."""
    reserve: Reserve


NO_RESERVE = Reserve(0.0, False)
Served = tuple[float, tuple[_Entry | None, ...]]
"""When a window was made, and per candidate (in CANDIDATES' order) what it served, or None."""


class Choice(NamedTuple):
    """What a step serves, and why."""

    pipeline: str
    value: float | None
    """The chosen candidate's served bound (None when it has none this step)."""
    why: str


class PipelineChoice:
    """The candidates' bounds, calibrated and scored side by side; `serve` returns the chosen one's."""

    def __init__(
        self,
        quantile: float,
        *,
        window: int,
        pipeline: str = "auto",
        gain: float = GAIN,
        alone: bool = False,
        bursts: bool = False,
        burst_settings: tuple[float, float] = (HORIZON_S, BURST_BAND),
    ) -> None:
        """`alone`, with a named `pipeline`: compute and score only that one (the simulator's
        no_forecast baseline, of which nobody asks what the others would have cost); `bursts`: the
        forecast and no_forecast bounds carry a burst reserve (`scaler.bursts`), with `burst_settings`
        (its horizon and band)."""
        if pipeline not in PIPELINES:
            raise ValueError(f"pipeline {pipeline!r}: expected one of {', '.join(PIPELINES)}")
        self._alone = alone and pipeline != "auto"
        self.quantile = quantile
        self._fixed = None if pipeline == "auto" else pipeline
        self._window = window
        self._candidates = {
            name: _Candidate(
                BoundCalibration(quantile, window=window, gain=gain),
                BurstReserve(quantile, window=window, horizon_s=burst_settings[0], band=burst_settings[1])
                if bursts and name != "reactive"
                else None,
            )
            for name in CANDIDATES
        }
        self._ordered = tuple(self._candidates.values())
        self._scored = False
        self._windows: LeadWindows[Served] = LeadWindows()
        """Each step's lead-time window, shared by the candidates (they differ only in what they served)."""
        self.chosen = self._fixed or "forecast"
        self.why = (
            "fixed by `pipeline`" if self._fixed else "the forecast until another pipeline is shown cheaper"
        )
        self.serving, self.serving_why = self.chosen, self.why
        """The pipeline whose bound the latest step served, and why: `chosen`, or no_forecast while the
        chosen forecast has no bound."""

    def calibration(self, name: str) -> BoundCalibration:
        return self._candidates[name].calibration

    def burst(self, name: str) -> BurstReserve | None:
        return self._candidates[name].burst

    def cost(self, name: str) -> float:
        """The candidate's mean value over its newest scored steps (NaN before any)."""
        return self._candidates[name].cost

    def actual(self, at_s: float, value: float) -> None:
        """Score every candidate with the value observed at `at_s` (before `serve` at that step)."""
        if not math.isfinite(value):
            return
        window = self._window
        for peak, (made_s, served) in self._windows.observe(at_s, value):
            self._scored = True
            for candidate, entry in zip(self._ordered, served, strict=True):
                if entry is None:
                    continue
                cost = entry.cost
                candidate.calibration.score(peak <= entry.value)
                if candidate.burst is not None:
                    candidate.burst.score(made_s, entry.reserve, peak, entry.bound, entry.centre)
                # A cost counts once its window is scored, as its coverage does.
                candidate.scored = min(candidate.scored + 1, window)
                previous = 0.0 if math.isnan(candidate.cost) else candidate.cost
                candidate.cost = previous + (cost - previous) / candidate.scored

    def serve(
        self,
        made_s: float,
        due_s: float,
        observed: float,
        parts: dict[str, Parts | None],
        factor: float = 1.0,
    ) -> Choice:
        """Each candidate's corrected bound for (made_s, due_s] is recorded; the chosen one is returned.
        `parts` holds the forecast's and no_forecast's bounds (None where there is none this step);
        `factor` is `SloControl`'s."""
        seen = observed if math.isfinite(observed) and observed > 0 else 0.0
        served: list[_Entry | None] = []
        for name, candidate in zip(CANDIDATES, self._ordered, strict=True):
            part = None
            if not self._alone or name == self.chosen:
                part = parts.get(name) if name != "reactive" else Parts(seen, seen)
            bound = math.nan if part is None else candidate.calibration.correct(*part, factor)
            if part is None or not math.isfinite(bound):
                served.append(None)
                continue
            burst = candidate.burst
            reserve = NO_RESERVE if burst is None else burst.reserve(made_s, bound)
            value = bound + reserve.value
            served.append(_Entry(value, max(value, seen), bound, part.centre * factor, reserve))
        self._windows.add(due_s, (made_s, tuple(served)))
        if self._fixed is None and self._scored:
            self._choose()  # the costs and coverages it compares change only when windows are scored
            self._scored = False
        name, why = self.chosen, self.why
        entry = served[CANDIDATES.index(name)]
        if entry is None and self._fixed is None and name == "forecast":
            instead = served[CANDIDATES.index("no_forecast")]
            if instead is not None:
                name, why, entry = (
                    "no_forecast",
                    "the forecast has no bound yet: no_forecast's in its place",
                    instead,
                )
        self.serving, self.serving_why = name, why
        return Choice(name, None if entry is None else entry.value, why)

    def _choose(self) -> None:
        floor = self.quantile - COVERAGE_SLACK
        eligible = {
            name: candidate.cost
            for name, candidate in self._candidates.items()
            if candidate.calibration.evaluations >= MIN_EVALUATIONS
            and candidate.calibration.coverage >= floor
            and candidate.scored
        }
        if not eligible:
            return
        best = min(eligible, key=eligible.__getitem__)
        current = eligible.get(self.chosen)
        if best == self.chosen or (current is not None and eligible[best] >= current * (1 - SWITCH_MARGIN)):
            return
        self.chosen = best
        parts = ", ".join(
            f"{name} {eligible[name]:.3g} (coverage {self._candidates[name].calibration.coverage:.2f})"
            for name in sorted(eligible, key=eligible.__getitem__)
        )
        self.why = f"cheapest at coverage >= {floor:.2f} over the newest scored steps: {parts}"
