"""How many replicas an arrival rate needs for a latency SLO: Erlang C with a variability correction. Pure.

A replica with `slots` concurrent requests is `slots` servers of one M/M/c queue, so `n` replicas are
c = n * slots servers, each completing 1 / S requests/s for a mean service time S; the offered load
is a = lambda * S erlangs. Erlang C is the probability that an arrival waits,

    C(c, a) = B(c, a) / (1 - (a / c) (1 - B(c, a))),   B(c, a) = (a^c / c!) / sum_{k<=c} a^k / k!

(B is Erlang B, computed here as a Poisson pmf over its cdf, stable for thousands of servers), and for
M/M/c the wait is exponential past that atom: P(W > t) = C(c, a) exp(-(c mu - lambda) t).

Service times of real inference requests are not exponential (output lengths vary, batching evens
them out), so the tail's decay is corrected by the Allen-Cunneen / Kingman factor: waits scale with
(ca^2 + cs^2) / 2, ca^2 = 1 for Poisson arrivals and cs = `service_cv`. The tail used is therefore

    P(W > t) = C(c, a) exp(-(c mu - lambda) t / k),   k = (1 + cs^2) / 2

which keeps Allen-Cunneen's mean wait C / (c mu - lambda) * k. For cs = 0 it is the heavy-traffic
tail of the deterministic-service queue the simulator (`scaler.sim.cluster`) runs, which is how the
two agree (tests/test_plan_queueing.py checks it on a sweep).

Latency is wait + service. With cs = 0 the service is S exactly; otherwise it is taken as gamma with
mean S and coefficient of variation cs, independent of the wait, and

    P(W + S > s) = P(S > s) + C * integral_0^s exp(-theta (s - x)) dF_S(x),   theta = (c mu - lambda) / k.

An SLO "latency at quantile q <= s" holds when P(W + S > s) <= 1 - q. It cannot hold at any replica
count when P(S > s) > 1 - q already: that is reported, not searched for.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from scipy import special  # type: ignore[import-untyped]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

ServiceTime = Callable[[FloatArray], FloatArray]
"""Mean service time (s) as a function of the arrival rate one replica carries (requests/s)."""

# Gauss-Legendre nodes for the latency integral; 64 resolve exp(-v) F(.) to ~1e-10.
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(64)
# exp(-_SPAN) is where the wait's kernel stops mattering.
_SPAN = 40.0
# Replica counts searched above the stability bound before giving up (a bug, not an input, if reached).
MAX_SEARCH = 10_000


def erlang_c(servers: npt.ArrayLike, offered: npt.ArrayLike) -> FloatArray:
    """C(c, a), the probability an arrival waits in M/M/c; 1 where a >= c (the queue is unstable)."""
    c = np.asarray(servers, dtype=np.float64)
    a = np.asarray(offered, dtype=np.float64)
    c, a = np.broadcast_arrays(c, a)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        log_pmf = c * np.log(np.where(a > 0, a, 1.0)) - a - special.gammaln(c + 1)
        cdf = special.pdtr(c, a)
        blocking = np.where(a > 0, np.exp(log_pmf) / cdf, 0.0)
        waiting = blocking / (1 - (a / c) * (1 - blocking))
    result: FloatArray = np.where(a >= c, 1.0, np.where(a > 0, np.clip(waiting, 0.0, 1.0), 0.0))
    return result


def wait_tail(
    t_s: npt.ArrayLike,
    servers: npt.ArrayLike,
    rate_rps: npt.ArrayLike,
    service_time_s: npt.ArrayLike,
    service_cv: float = 1.0,
) -> FloatArray:
    """P(W > t): the corrected Erlang C waiting-time tail (see the module docstring)."""
    c = np.asarray(servers, dtype=np.float64)
    lam = np.asarray(rate_rps, dtype=np.float64)
    mean_s = np.asarray(service_time_s, dtype=np.float64)
    t = np.asarray(t_s, dtype=np.float64)
    spare = c / mean_s - lam
    decay = np.maximum(spare, 0.0) / _kingman(service_cv)
    tail: FloatArray = np.where(spare > 0, erlang_c(c, lam * mean_s) * np.exp(-decay * t), 1.0)
    return tail


def latency_tail(
    slo_s: float,
    servers: npt.ArrayLike,
    rate_rps: npt.ArrayLike,
    service_time_s: npt.ArrayLike,
    service_cv: float,
) -> FloatArray:
    """P(W + S > slo_s) for c `servers` at `rate_rps`, service mean `service_time_s` and cv `service_cv`."""
    c = np.asarray(servers, dtype=np.float64)
    lam = np.asarray(rate_rps, dtype=np.float64)
    mean_s = np.asarray(service_time_s, dtype=np.float64)
    c, lam, mean_s = np.broadcast_arrays(c, lam, mean_s)
    spare = c / mean_s - lam
    waits = erlang_c(c, lam * mean_s)
    theta = np.maximum(spare, 0.0) / _kingman(service_cv)
    if service_cv == 0:
        past = slo_s - mean_s
        with np.errstate(over="ignore"):
            tail = np.where(past >= 0, waits * np.exp(-theta * np.maximum(past, 0.0)), 1.0)
    else:
        # integral_0^s exp(-theta (s - x)) dF(x) = F(s) - J, J = integral_0^{theta s} exp(-v) F(s - v / theta) dv
        shape = 1.0 / service_cv**2
        scale = mean_s * service_cv**2
        beyond = special.gammaincc(shape, slo_s / scale)
        reach = np.minimum(theta * slo_s, _SPAN)[..., None]
        v = (reach / 2) * (_NODES + 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.where(theta[..., None] > 0, slo_s - v / theta[..., None], slo_s)
        cdf_x = special.gammainc(shape, np.maximum(x, 0.0) / scale[..., None])
        inner = (reach[..., 0] / 2) * (np.exp(-v) * cdf_x * _WEIGHTS).sum(axis=-1)
        kernel = (1 - beyond) - inner
        tail = beyond + waits * np.maximum(kernel, 0.0)
    result: FloatArray = np.where(spare > 0, np.clip(tail, 0.0, 1.0), 1.0)
    return result


def service_tail(slo_s: float, service_time_s: float, service_cv: float) -> float:
    """P(S > slo_s): the part of the SLO no replica count can buy."""
    if service_cv == 0:
        return 1.0 if service_time_s > slo_s else 0.0
    shape = 1.0 / service_cv**2
    return float(special.gammaincc(shape, slo_s / (service_time_s * service_cv**2)))


def replicas_for_slo(
    rate_rps: npt.ArrayLike,
    *,
    slots: int,
    service_time: ServiceTime,
    service_cv: float,
    slo_s: float,
    slo_quantile: float,
    min_replicas: int = 1,
    fastest_service_s: float,
) -> IntArray:
    """The smallest replica count per rate whose latency at `slo_quantile` is at most `slo_s`.

    `service_time(per_replica_rps)` gives the mean service time at a replica's load (a constant, or
    interpolated from a load test); `fastest_service_s` is its minimum, which bounds the search from
    below. The caller checks feasibility first (`service_tail`). Zero demand needs `min_replicas`.
    """
    lam = np.asarray(rate_rps, dtype=np.float64).ravel()
    allowed = 1.0 - slo_quantile
    need = np.full(lam.size, max(min_replicas, 0), dtype=np.int64)
    busy = lam > 0
    first = np.floor(lam * fastest_service_s / slots).astype(np.int64) + 1
    candidate = np.maximum(need, np.where(busy, first, need))
    open_ = busy.copy()
    for _ in range(MAX_SEARCH):
        if not open_.any():
            return need
        n = candidate[open_]
        rate = lam[open_]
        mean_s = service_time(rate / n)
        ok = latency_tail(slo_s, n * slots, rate, mean_s, service_cv) <= allowed * (1 + 1e-9)
        index = np.flatnonzero(open_)
        need[index[ok]] = n[ok]
        open_[index[ok]] = False
        candidate[index[~ok]] += 1
    raise RuntimeError(
        f"no replica count up to {int(candidate.max())} meets the SLO; check service_tail first"
    )


def naive_replicas(
    rate_rps: npt.ArrayLike, *, capacity_rps: float, safety_factor: float, min_replicas: int = 1
) -> IntArray:
    """The rule of thumb: ceil(rate x safety factor / one replica's throughput), at least `min_replicas`."""
    lam = np.asarray(rate_rps, dtype=np.float64).ravel()
    count = np.ceil(lam * safety_factor / capacity_rps - 1e-9).astype(np.int64)
    return np.maximum(count, min_replicas)


def _kingman(service_cv: float) -> float:
    if not (math.isfinite(service_cv) and service_cv >= 0):
        raise ValueError(f"service_cv is {service_cv}; it must be a finite number >= 0")
    return (1.0 + service_cv**2) / 2.0
