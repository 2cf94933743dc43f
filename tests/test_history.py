"""The per-target ring buffer."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scaler.history import History


def test_values_land_on_their_step_and_gaps_stay_nan() -> None:
    history = History(step_s=15, capacity=8)
    history.append(30.0, 1.0)
    history.append(45.0, 2.0)
    history.append(90.0, 5.0)  # steps 4 and 5 got no sample
    at_s, values = history.window(5)
    assert at_s.tolist() == [30.0, 45.0, 60.0, 75.0, 90.0]
    assert values[:2].tolist() == [1.0, 2.0]
    assert math.isnan(values[2]) and math.isnan(values[3])
    assert history.latest() == 5.0


def test_ring_wraps_and_forgets_the_oldest() -> None:
    history = History(step_s=1, capacity=4)
    for t in range(10):
        history.append(float(t), float(t * 10))
    at_s, values = history.window()
    assert at_s.tolist() == [6.0, 7.0, 8.0, 9.0]
    assert values.tolist() == [60.0, 70.0, 80.0, 90.0]


def test_a_jump_longer_than_the_buffer_clears_it() -> None:
    history = History(step_s=1, capacity=4)
    history.extend(np.array([0.0, 1.0, 2.0, 3.0]), np.array([1.0, 1.0, 1.0, 1.0]))
    history.append(100.0, 7.0)
    _, values = history.window()
    assert np.isnan(values[:3]).all() and values[3] == 7.0


def test_non_finite_values_are_gaps_and_late_samples_fill_their_slot() -> None:
    history = History(step_s=10, capacity=6)
    history.append(0.0, math.inf)
    history.append(20.0, 3.0)
    history.append(10.0, 2.0)  # late, still inside the window
    history.append(-100.0, 9.0)  # too old: dropped
    _, values = history.window(3)
    assert math.isnan(values[0]) and values[1:].tolist() == [2.0, 3.0]


def test_empty_history() -> None:
    history = History(step_s=5, capacity=3)
    assert len(history) == 0
    assert math.isnan(history.latest())
    assert history.window()[0].size == 0


@pytest.mark.parametrize(("step", "capacity"), [(0, 3), (5, 0)])
def test_invalid_shape_is_refused(step: float, capacity: int) -> None:
    with pytest.raises(ValueError, match="must be > 0"):
        History(step, capacity)
