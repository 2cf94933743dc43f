"""NASA-HTTP's time axis: two monthly logs joined end to end, put back on the calendar."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from scaler.traces import (
    NASA_AUGUST_S,
    NASA_JOIN_INDEX,
    NASA_START_S,
    Trace,
    _joined_seconds,
    load_trace,
    regrid,
)

# The server's local time, in which the trace's SOURCE.md gives its dates.
LOCAL = timezone(timedelta(hours=-4))


def local(at_s: float) -> datetime:
    return datetime.fromtimestamp(at_s, tz=LOCAL)


def test_joined_seconds_resume_at_the_second_log() -> None:
    at_s = _joined_seconds(6, start_s=100.0, join_index=3, resume_s=200.0)
    assert at_s.tolist() == [100.0, 101.0, 102.0, 200.0, 201.0, 202.0]


def test_joined_seconds_shorter_than_the_first_log_are_consecutive() -> None:
    at_s = _joined_seconds(3, start_s=100.0, join_index=3, resume_s=200.0)
    assert at_s.tolist() == [100.0, 101.0, 102.0]


def test_the_gap_between_the_logs_is_missing_after_regrid() -> None:
    at_s = _joined_seconds(40, start_s=0.0, join_index=20, resume_s=50.0)
    trace = regrid(Trace("joined", at_s, np.ones(40), 1.0), 10.0)
    # Bins 0-1 and 5-6 hold data; 2-4 (20 s to 50 s) fell in the gap: missing, not zero load.
    assert trace.at_s.tolist() == [0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0]
    assert np.isnan(trace.values[2:5]).all()
    assert trace.values[[0, 1, 5, 6]].tolist() == [1.0] * 4


def test_constants_match_the_dates_in_source_md() -> None:
    # SOURCE.md: index 0 = 1995-07-01 00:00:01, index 2,381,543 = 1995-07-28 13:32:24 (the July log's
    # end), index 2,381,544 = 1995-08-01 00:00:01 (server-local, UTC-4).
    assert local(NASA_START_S) == datetime(1995, 7, 1, 0, 0, 1, tzinfo=LOCAL)
    assert NASA_JOIN_INDEX == 2_381_544
    assert local(NASA_START_S + NASA_JOIN_INDEX - 1) == datetime(1995, 7, 28, 13, 32, 24, tzinfo=LOCAL)
    assert local(NASA_AUGUST_S) == datetime(1995, 8, 1, 0, 0, 1, tzinfo=LOCAL)


def test_a_workload_file_past_the_join_is_loaded_on_the_calendar(tmp_path: Path) -> None:
    counts = tmp_path / "workload.txt"
    counts.write_text("1 " * (NASA_JOIN_INDEX + 2))
    trace = load_trace(counts)
    assert local(trace.at_s[NASA_JOIN_INDEX - 1]) == datetime(1995, 7, 28, 13, 32, 24, tzinfo=LOCAL)
    assert local(trace.at_s[NASA_JOIN_INDEX]) == datetime(1995, 8, 1, 0, 0, 1, tzinfo=LOCAL)
    assert local(trace.at_s[-1]) == datetime(1995, 8, 1, 0, 0, 2, tzinfo=LOCAL)
    hourly = regrid(trace, 3600.0)
    # The hours from Jul 28 14:00 to Aug 1 00:00 hold no data: 82 missing, none zero.
    assert int(np.isnan(hourly.values).sum()) == 82
    assert (hourly.values[np.isfinite(hourly.values)] == 1.0).all()
    assert local(hourly.at_s[-1]) == datetime(1995, 8, 1, 0, 0, 0, tzinfo=LOCAL)
