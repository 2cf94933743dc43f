"""How to buy an hourly replica need: a reserved level, spot above it, on-demand for the rest. Pure.

Each hour h needs n_h replicas (from the queueing model). A reservation holds a constant level R over
the horizon and is paid whether used or not; above it, each hour buys the excess max(0, n_h - R):

- on spot, at most `max_share` of the hour's need, plus enough extra spot replicas that the ones
  interrupted and still being replaced (each hole lasts a start-up) are covered at the SLO
  quantile: with s spot replicas, holes ~ Poisson(s x interruptions/h x start-up/h), and the extras
  are that Poisson's quantile. The hour takes the spot count (0 to its cap) that costs least;
- on on-demand for the rest.

The reserved level minimising the horizon's cost is the newsvendor's: with on-demand only above it,
raising R by one saves the on-demand price in every hour whose need exceeds R and costs the reserved
price in every hour, so the optimum is where P(need > R) = reserved / on-demand. With spot and its
integer extras the cost is not smooth in R, so the level is found by an exact scan over every R from
0 to the largest need; the scan also gives the sensitivity curve (cost at each R) the report draws.
Every term holds its level over the whole horizon, so the optimum reserves in the term with the
lowest hourly-equivalent price; each term's own optimum is reported beside it (what a shorter
commitment costs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special  # type: ignore[import-untyped]

from scaler.plan.profile import Prices
from scaler.plan.queueing import FloatArray, IntArray

HOUR_S = 3600.0
MONTH_H = 730.0
"""Hours in a billing month (365 x 24 / 12)."""


@dataclass(frozen=True, slots=True)
class Mix:
    """Replicas bought per hour."""

    reserved: IntArray
    spot: IntArray
    """Spot replicas provisioned, interruption extras included."""
    on_demand: IntArray


@dataclass(frozen=True, slots=True)
class Procurement:
    """The cheapest way to buy `need`, and what the alternatives cost."""

    term: str | None
    """The term reserved in (the cheapest), None without reservations."""
    level: int
    """Reserved replicas."""
    by_term: dict[str, int]
    """Reserved replicas per term (0 for the terms not bought)."""
    mix: Mix
    cost_usd: float
    """The horizon's cost."""
    levels: IntArray
    """The sensitivity curve: reserved levels 0 .. max need ..."""
    curve_usd: FloatArray
    """... and the horizon's cost at each (in the cheapest term)."""
    term_optimum: dict[str, tuple[int, float]]
    """Per term: its own optimal level and the horizon's cost at it."""

    @property
    def spot_share(self) -> float:
        """Spot replica-hours / all replica-hours bought."""
        total = int(self.mix.reserved.sum() + self.mix.spot.sum() + self.mix.on_demand.sum())
        return float(self.mix.spot.sum()) / total if total else 0.0


def spot_extras(
    serving: IntArray, interruptions_per_hour: float, replace_s: float, quantile: float
) -> IntArray:
    """Extra spot replicas so that holes from interruptions (each open for `replace_s`) exceed them
    with probability at most 1 - `quantile`."""
    serving = np.asarray(serving, dtype=np.int64)
    mean = serving * interruptions_per_hour * max(replace_s, 1.0) / HOUR_S
    extras = np.zeros(serving.shape, dtype=np.int64)
    open_ = mean > 0
    k = 0
    while open_.any():
        # P(Poisson(mean) <= k) >= quantile: k extras suffice.
        done = open_ & (special.pdtr(k, mean) >= quantile)
        extras[done] = k
        open_ &= ~done
        k += 1
    return extras


def hourly_cost_usd(mix: Mix, prices: Prices, gpus_per_replica: int, reserved_price: float) -> FloatArray:
    """Each hour's cost of `mix`."""
    spot_price = prices.spot.price if prices.spot else 0.0
    per_replica = (
        mix.reserved * reserved_price + mix.spot * spot_price + mix.on_demand * prices.on_demand
    ).astype(np.float64)
    result: FloatArray = per_replica * gpus_per_replica
    return result


def _spot_table(need: IntArray, prices: Prices, replace_s: float, quantile: float) -> IntArray:
    """Interruption extras for every spot count up to the largest cap (that of reserving nothing)."""
    share = prices.spot.max_share if prices.spot else 0.0
    top = int(np.floor(share * need.max() + 1e-9)) if need.size else 0
    counts = np.arange(top + 1, dtype=np.int64)
    rate = prices.spot.interruptions_per_hour if prices.spot else 0.0
    return spot_extras(counts, rate, replace_s, quantile)


def _above(
    need: IntArray, level: int, prices: Prices, gpus: int, extras: IntArray
) -> tuple[IntArray, IntArray, FloatArray]:
    """(spot, on-demand, cost) per hour for the excess over `level`, with the cheapest spot count."""
    excess = np.maximum(need - level, 0)
    on_demand_only = excess * prices.on_demand * gpus
    spot = prices.spot
    if spot is None or spot.max_share <= 0 or not excess.any():
        zeros = np.zeros_like(excess)
        return zeros, excess, on_demand_only.astype(np.float64)
    cap = np.minimum(np.floor(spot.max_share * need + 1e-9).astype(np.int64), excess)
    # Between two jumps of the extras the cost is linear in the spot count, so the cheapest count is
    # 0, the cap, or the last count before a jump.
    jumps = np.flatnonzero(np.diff(extras[: int(cap.max()) + 1]) > 0)
    candidates = np.concatenate(
        [np.zeros((need.size, 1), np.int64), cap[:, None], np.broadcast_to(jumps, (need.size, jumps.size))],
        axis=1,
    )
    candidates = np.where(candidates <= cap[:, None], candidates, 0)
    cost = (candidates + extras[candidates]) * spot.price + (excess[:, None] - candidates) * prices.on_demand
    best = cost.argmin(axis=1)
    rows = np.arange(need.size)
    serving = candidates[rows, best]
    return serving + extras[serving], excess - serving, cost[rows, best] * gpus


def procure(
    need: IntArray, prices: Prices, *, gpus_per_replica: int, replace_s: float, quantile: float
) -> Procurement:
    """The exact cheapest reserved level (scan), and the per-hour spot and on-demand above it."""
    need = np.asarray(need, dtype=np.int64)
    top = int(need.max()) if need.size else 0
    levels = np.arange(top + 1, dtype=np.int64)
    hours = need.size
    extras = _spot_table(need, prices, replace_s, quantile)
    above = np.array([_above(need, int(r), prices, gpus_per_replica, extras)[2].sum() for r in levels])
    term_optimum: dict[str, tuple[int, float]] = {}
    for term in prices.reserved:
        costs = levels * term.price * gpus_per_replica * hours + above
        best = _cheapest(costs)
        term_optimum[term.term] = (best, float(costs[best]))
    cheapest = min(prices.reserved, key=lambda t: t.price) if prices.reserved else None
    price = cheapest.price if cheapest else 0.0
    if cheapest is None:
        levels, curve = levels[:1], above[:1]
    else:
        curve = levels * price * gpus_per_replica * hours + above
    level = _cheapest(curve)
    spot, on_demand, _ = _above(need, level, prices, gpus_per_replica, extras)
    mix = Mix(np.full(hours, level, dtype=np.int64), spot, on_demand)
    cost = float(hourly_cost_usd(mix, prices, gpus_per_replica, price).sum())
    by_term = {
        t.term: (level if cheapest is not None and t.term == cheapest.term else 0) for t in prices.reserved
    }
    return Procurement(
        cheapest.term if cheapest else None,
        level,
        by_term,
        mix,
        cost,
        levels,
        np.asarray(curve, dtype=np.float64),
        term_optimum,
    )


def _cheapest(costs: FloatArray) -> int:
    """The lowest level whose cost is the minimum (to float noise): ties commit to less."""
    return int(np.flatnonzero(costs <= costs.min() + 1e-9 * max(1.0, abs(float(costs.min()))))[0])


def monthly(horizon_usd: float, hours: int) -> float:
    """A horizon's cost scaled to a 730-hour month."""
    return horizon_usd * MONTH_H / hours if hours else 0.0
