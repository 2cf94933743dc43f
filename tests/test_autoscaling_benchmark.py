"""benchmarks/autoscaling.py's job plan: every job of the pre-registered protocol once, in tasks that
share fits only where the fits are the same."""

from __future__ import annotations

from benchmarks.autoscaling import _forecasting, jobs, protocol, tasks


def test_every_job_runs_once_and_only_jobs_with_the_same_fits_share_a_task() -> None:
    windows = protocol()
    found = jobs(windows)
    planned = tasks(found, float(windows["protocol"]["peak_replicas"]))
    keys = [job.key for group in planned for job in group]
    assert sorted(keys) == sorted(job.key for job in found)
    assert len(set(keys)) == len(keys)
    for group in planned:
        assert len({(j.trace, j.split, j.start_day, j.seed) for j in group}) == 1
        assert len({_forecasting(j.startup_s, 20.0) for j in group}) == 1
    # 60 s and 180 s fit the same horizon (in 300 s steps), 600 s a longer one.
    assert _forecasting(60.0, 20.0) == _forecasting(180.0, 20.0) != _forecasting(600.0, 20.0)
    assert [j.startup_s for j in planned[0]] == [180.0, 60.0]
    # A window's seeds run in a row, test windows before dev windows.
    first = [(j.trace, j.start_day, j.seed) for j in found[:3]]
    assert first == [(found[0].trace, found[0].start_day, seed) for seed in (1, 2, 3)]
    splits = [j.split for j in found if j.startup_s == 180.0]
    assert splits == sorted(splits, key=lambda s: s != "test")
