"""Profile and price files: every problem named with its key, value and expectation, all at once."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scaler.plan.profile import PlanInputError, parse_prices, parse_profile

PROFILE = {
    "gpus_per_replica": 2,
    "slots_per_replica": 8,
    "service_time_s": 2.0,
    "service_time_cv": 0.5,
    "startup_s": "3m",
    "slo": {"quantile": 0.99, "seconds": 10},
}


def test_a_valid_profile_and_its_derived_values() -> None:
    profile = parse_profile(
        {
            **PROFILE,
            "load_test": [
                {"rps_per_replica": 1, "service_time_s": 2},
                {"rps_per_replica": 3, "service_time_s": 3},
            ],
        },
        "p.yaml",
    )
    assert profile.startup_s == 180.0 and profile.min_replicas == 1 and profile.naive_safety_factor == 1.3
    assert profile.capacity_rps == 4.0 and profile.fastest_service_s == 2.0
    np.testing.assert_allclose(profile.service_time()(np.array([0.0, 2.0, 9.0])), [2.0, 2.5, 3.0])
    assert profile.to_json()["slo"] == {"quantile": 0.99, "seconds": 10}


def test_every_problem_of_a_profile_is_listed_at_once() -> None:
    raw = {
        **PROFILE,
        "gpus_per_replica": 1.5,
        "service_time_cv": -1,
        "slo": {"quantile": 0.99},
        "colour": "red",
    }
    with pytest.raises(PlanInputError) as info:
        parse_profile(raw, "p.yaml")
    message = str(info.value)
    assert message.startswith("p.yaml: ")
    for part in (
        "`gpus_per_replica`: `1.5` is not valid; expected a whole number >= 1",
        "`service_time_cv`: `-1` is not valid",
        "`slo.seconds` is required",
        "unknown key `colour`",
    ):
        assert part in message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param({"on_demand": 0}, "`on_demand`: `0` is not valid; expected USD per GPU-hour > 0", id="price"),
        pytest.param({"on_demand": 4, "spot": {"price": 1, "interruptions_per_hour": 0.1, "max_share": 1.5}}, "`spot.max_share`: `1.5` is not valid; expected a share in [0, 1]", id="share"),
        pytest.param({"on_demand": 4, "spot": {"price": 1}}, "`spot.interruptions_per_hour` is required", id="spot-missing"),
        pytest.param({"on_demand": 4, "reserved": [{"term": "1y", "price": 2}, {"term": "1y", "price": 1}]}, "`reserved[1].term`: `1y` is not valid; expected a term not listed before", id="duplicate"),
        pytest.param({"on_demand": 4, "reserved": {"term": "1y"}}, "`reserved`: `{'term': '1y'}` is not valid; expected a list", id="not-a-list"),
        pytest.param({"on_demand": "cheap"}, "`on_demand`: `cheap` is not valid", id="text"),
        pytest.param([1, 2], "`(top level)`: `[1, 2]` is not valid; expected a mapping", id="top"),
    ],
)  # fmt: skip
def test_bad_prices_name_key_value_and_expectation(raw: object, expected: str) -> None:
    with pytest.raises(PlanInputError) as info:
        parse_prices(raw, "prices.yaml")
    assert str(info.value).startswith("prices.yaml: ") and expected in str(info.value)


def test_prices_defaults() -> None:
    prices = parse_prices({"on_demand": 3}, "prices.yaml")
    assert prices.spot is None and prices.reserved == ()
    assert prices.to_json() == {"on_demand": 3.0, "spot": None, "reserved": []}
    assert not math.isnan(prices.on_demand)
