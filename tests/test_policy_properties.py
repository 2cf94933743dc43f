"""Properties of the decision rule (Hypothesis)."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from scaler.policy import decide
from scaler.trigger import parse_trigger

CONFIG = parse_trigger({"source": "replay", "trace": "t.csv", "threshold": "4", "mode": "predictive"})
ANY = st.floats(allow_nan=True, allow_infinity=True)
LOAD = st.floats(min_value=0, max_value=1e12)
MAYBE_BOUND = st.one_of(st.none(), ANY)


@given(observed=ANY, bound=MAYBE_BOUND)
def test_value_is_finite_non_negative_and_never_below_observed(observed: float, bound: float | None) -> None:
    decision = decide(0.0, observed, CONFIG, bound)
    assert math.isfinite(decision.value)
    assert decision.value >= 0
    if math.isfinite(observed):
        assert decision.value >= observed


@given(observed=LOAD, low=LOAD, high=LOAD)
def test_value_is_monotone_in_the_forecast(observed: float, low: float, high: float) -> None:
    low, high = min(low, high), max(low, high)
    assert decide(0.0, observed, CONFIG, low).value <= decide(0.0, observed, CONFIG, high).value


@given(rise=st.floats(min_value=1e-6, max_value=1e9))
def test_a_rising_forecast_wakes_an_idle_target(rise: float) -> None:
    idle = decide(0.0, 0.0, CONFIG, None)
    ahead = decide(0.0, 0.0, CONFIG, rise)
    assert not idle.active
    assert ahead.active
    assert ahead.reason == "forecast"


@given(bound=st.one_of(st.none(), st.floats(max_value=0.0)))
def test_zero_load_with_no_positive_forecast_is_inactive(bound: float | None) -> None:
    assert not decide(0.0, 0.0, CONFIG, bound).active
