"""Procurement: the reserved level is the exact optimum (brute force, HiGHS LP, newsvendor)."""

from __future__ import annotations

import highspy
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from scaler.plan.procurement import hourly_cost_usd, procure, spot_extras
from scaler.plan.profile import Prices, Spot, Term


def brute_force(
    need: list[int], prices: Prices, gpus: int, replace_s: float, quantile: float
) -> tuple[int, float]:
    """Every reserved level, every spot count in every hour: the cheapest (level, horizon cost)."""
    spot = prices.spot
    best: tuple[int, float] | None = None
    price = min(t.price for t in prices.reserved)
    for level in range(max(need) + 1):
        total = level * price * gpus * len(need)
        for n in need:
            excess = max(0, n - level)
            cap = min(int(np.floor(spot.max_share * n + 1e-9)), excess) if spot else 0
            options = []
            for s in range(cap + 1):
                extras = (
                    int(spot_extras(np.array([s]), spot.interruptions_per_hour, replace_s, quantile)[0])
                    if spot
                    else 0
                )
                options.append(
                    ((s + extras) * (spot.price if spot else 0.0) + (excess - s) * prices.on_demand) * gpus
                )
            total += min(options)
        if best is None or total < best[1] - 1e-9:
            best = (level, total)
    assert best is not None
    return best


@st.composite
def cases(draw: st.DrawFn) -> tuple[list[int], Prices, int, float]:
    need = draw(st.lists(st.integers(0, 25), min_size=1, max_size=30))
    on_demand = draw(st.floats(1.0, 5.0))
    terms = tuple(
        Term(f"t{i}", draw(st.floats(0.2, 1.2)) * on_demand) for i in range(draw(st.integers(1, 3)))
    )
    spot = draw(
        st.one_of(
            st.none(),
            st.builds(
                Spot,
                price=st.floats(0.1, 1.1).map(lambda f: f * on_demand),
                interruptions_per_hour=st.floats(0.0, 2.0),
                max_share=st.floats(0.0, 1.0),
            ),
        )
    )
    return need, Prices(on_demand, spot, terms), draw(st.integers(1, 8)), draw(st.floats(0.0, 3600.0))


@settings(max_examples=60, deadline=None)
@given(cases())
def test_reserved_level_is_the_brute_force_optimum(case: tuple[list[int], Prices, int, float]) -> None:
    need, prices, gpus, replace_s = case
    got = procure(np.array(need), prices, gpus_per_replica=gpus, replace_s=replace_s, quantile=0.99)
    level, cost = brute_force(need, prices, gpus, replace_s, 0.99)
    assert got.level == level
    assert np.isclose(got.cost_usd, cost)
    # The cost is the sum of the hours' costs, and the curve's minimum is at the level chosen.
    cheapest = min(t.price for t in prices.reserved)
    assert np.isclose(hourly_cost_usd(got.mix, prices, gpus, cheapest).sum(), got.cost_usd)
    assert np.isclose(got.curve_usd.min(), cost) and np.isclose(got.curve_usd[got.level], cost)
    # Every hour is covered: reserved + spot serving + on-demand >= need.
    assert (got.mix.reserved + got.mix.spot + got.mix.on_demand >= np.array(need)).all()


def test_without_spot_the_scan_equals_the_highs_lp_and_the_newsvendor_rule() -> None:
    rng = np.random.default_rng(7)
    need = np.rint(20 + 12 * np.sin(np.arange(336) * 2 * np.pi / 24) + rng.normal(0, 3, 336)).astype(np.int64)
    need = np.maximum(need, 0)
    prices = Prices(4.0, None, (Term("1y", 2.6), Term("3y", 1.9)))
    got = procure(need, prices, gpus_per_replica=2, replace_s=180.0, quantile=0.99)
    assert got.term == "3y" and got.by_term == {"1y": 0, "3y": got.level}

    # The LP: min 1.9 H R + 4 sum o_h  s.t.  R + o_h >= n_h; its matrix is an interval matrix, so
    # the LP optimum is integral and equals the integer optimum.
    lp = highspy.Highs()
    lp.setOptionValue("output_flag", False)
    reserved = lp.addVariable(lb=0, obj=1.9 * 2 * need.size)
    for n in need:
        extra = lp.addVariable(lb=0, obj=4.0 * 2)
        lp.addConstr(reserved + extra >= float(n))
    lp.minimize()
    assert np.isclose(lp.getInfo().objective_function_value, got.cost_usd)
    assert np.isclose(lp.val(reserved), got.level)

    # Newsvendor: the level where P(need > R) crosses reserved / on-demand price.
    ratio = 1.9 / 4.0
    over = np.array([(need > r).mean() for r in range(int(need.max()) + 1)])
    assert over[got.level] <= ratio <= over[got.level - 1]
    # And the other term's own optimum is reported (a dearer price reserves no more).
    assert got.term_optimum["1y"][0] <= got.level


def test_spot_extras_cover_interruptions_at_the_quantile() -> None:
    extras = spot_extras(np.array([0, 1, 10, 100, 1000]), 0.1, 600.0, 0.99)
    assert extras[0] == 0 and (np.diff(extras) >= 0).all()
    # 1000 spot replicas, 0.1/h, 10 min holes: Poisson(16.7) holes; its 0.99 quantile is 27.
    assert extras[-1] == 27
    assert spot_extras(np.array([50]), 0.0, 600.0, 0.99)[0] == 0


def test_no_terms_means_no_reservation_and_spot_only_where_cheaper() -> None:
    need = np.array([10, 20, 30])
    got = procure(
        need, Prices(3.0, Spot(3.5, 0.05, 0.5), ()), gpus_per_replica=1, replace_s=180, quantile=0.99
    )
    assert got.level == 0 and got.term is None and got.by_term == {}
    assert (got.mix.spot == 0).all() and (got.mix.on_demand == need).all()
    cheap = procure(
        need, Prices(3.0, Spot(1.0, 0.05, 0.5), ()), gpus_per_replica=1, replace_s=180, quantile=0.99
    )
    assert cheap.spot_share > 0.3 and cheap.cost_usd < got.cost_usd
