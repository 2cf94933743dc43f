"""The queueing model: Erlang C against the textbook formula, and replica counts against the simulator."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scaler.plan.profile import Profile
from scaler.plan.queueing import erlang_c, latency_tail, replicas_for_slo, service_tail, wait_tail
from scaler.plan.replay import simulated_replicas


def erlang_c_by_hand(c: int, a: float) -> float:
    """C(c, a) = (a^c / c!) (c / (c - a)) / (sum_{k<c} a^k / k! + (a^c / c!) (c / (c - a)))."""
    top = a**c / math.factorial(c) * c / (c - a)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


@pytest.mark.parametrize(
    ("c", "a"),
    [
        pytest.param(12, 10.0, id="a=10,c=12"),
        pytest.param(2, 1.0, id="a=1,c=2"),
        pytest.param(5, 4.5, id="a=4.5,c=5"),
        pytest.param(30, 20.0, id="a=20,c=30"),
    ],
)
def test_erlang_c_matches_the_textbook_formula_to_four_digits(c: int, a: float) -> None:
    assert float(erlang_c(c, a)) == pytest.approx(erlang_c_by_hand(c, a), abs=5e-5)


def test_erlang_c_textbook_value() -> None:
    # a = 10 erlangs on 12 servers: an arrival waits with probability 0.4494.
    assert round(float(erlang_c(12, 10.0)), 4) == 0.4494


def test_erlang_c_limits_and_thousands_of_servers() -> None:
    assert float(erlang_c(4, 0.0)) == 0.0
    assert float(erlang_c(4, 4.0)) == 1.0
    assert float(erlang_c(4, 9.0)) == 1.0
    big = float(erlang_c(5000, 4900.0))
    assert 0 < big < 1 and math.isfinite(big)


def test_wait_tail_is_erlang_c_at_zero_and_mm_c_decay_for_exponential_service() -> None:
    c, lam, mean_s = 12, 5.0, 2.0  # a = 10
    assert float(wait_tail(0.0, c, lam, mean_s, 1.0)) == pytest.approx(erlang_c_by_hand(12, 10.0))
    # M/M/c: P(W > t) = C exp(-(c mu - lambda) t); mu = 0.5, c mu - lambda = 1.
    assert float(wait_tail(3.0, c, lam, mean_s, 1.0)) == pytest.approx(
        erlang_c_by_hand(12, 10.0) * math.exp(-3.0)
    )
    # Deterministic service halves the waits (Kingman: (1 + 0) / 2): the decay doubles.
    assert float(wait_tail(3.0, c, lam, mean_s, 0.0)) == pytest.approx(
        erlang_c_by_hand(12, 10.0) * math.exp(-6.0)
    )


def test_latency_tail_with_variable_service_converges_to_the_deterministic_one() -> None:
    exact = float(latency_tail(6.0, 24, 10.0, 2.0, 0.0))
    assert float(latency_tail(6.0, 24, 10.0, 2.0, 0.02)) == pytest.approx(exact, rel=0.05)
    # More service variability: a fatter tail at the same load.
    assert float(latency_tail(6.0, 24, 10.0, 2.0, 0.8)) > float(latency_tail(6.0, 24, 10.0, 2.0, 0.3))
    assert float(latency_tail(6.0, 24, 11.99, 2.0, 0.5)) > float(latency_tail(6.0, 24, 6.0, 2.0, 0.5))


def test_replicas_are_minimal_and_monotone_in_the_rate() -> None:
    rates = np.linspace(0.0, 200.0, 41)
    constant = lambda r: np.full_like(r, 2.0)  # noqa: E731
    need = replicas_for_slo(
        rates,
        slots=8,
        service_time=constant,
        service_cv=0.5,
        slo_s=8.0,
        slo_quantile=0.99,
        fastest_service_s=2.0,
    )
    assert need[0] == 1 and (np.diff(need) >= 0).all()
    tails = latency_tail(8.0, need * 8, rates, 2.0, 0.5)
    fewer = latency_tail(8.0, (need - 1) * 8, rates, 2.0, 0.5)
    assert (tails <= 0.01 + 1e-12).all()
    assert (fewer[need > 1] > 0.01).all()


def test_service_tail_names_what_no_replica_count_can_buy() -> None:
    assert service_tail(5.0, 2.0, 0.0) == 0.0
    assert service_tail(1.0, 2.0, 0.0) == 1.0
    assert 0.01 < service_tail(5.0, 2.0, 0.5) < 0.02


def test_replica_counts_agree_with_the_simulator_within_one_replica() -> None:
    # The simulator's service is deterministic: the queueing model with cv = 0 must match its queue.
    profile = Profile(
        gpus_per_replica=1,
        slots_per_replica=8,
        service_time_s=2.0,
        service_time_cv=0.0,
        startup_s=60.0,
        slo_quantile=0.99,
        slo_seconds=3.0,
    )
    rates = np.array([3.0, 12.0, 40.0, 90.0, 160.0])
    planned = replicas_for_slo(
        rates,
        slots=8,
        service_time=profile.service_time(),
        service_cv=0.0,
        slo_s=3.0,
        slo_quantile=0.99,
        fastest_service_s=2.0,
    )
    simulated = [
        simulated_replicas(float(r), profile, service_time_s=2.0, start=int(n), minutes=20.0)
        for r, n in zip(rates, planned, strict=True)
    ]
    assert np.abs(planned - np.array(simulated)).max() <= 1, (planned.tolist(), simulated)
