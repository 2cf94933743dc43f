"""benchmarks/autoscaling.py's job plan: every job of the pre-registered protocol once, in tasks that
share fits only where the fits are the same."""

from __future__ import annotations

from benchmarks.autoscaling import forecasting_settings, jobs, protocol, tasks


def test_every_job_runs_once_and_a_task_is_one_window_with_its_seeds_in_a_row() -> None:
    windows = protocol()
    found = jobs(windows)
    planned = tasks(found)
    keys = [job.key for group in planned for job in group]
    assert sorted(keys) == sorted(job.key for job in found)
    assert len(set(keys)) == len(keys)
    assert all(len({(j.trace, j.split, j.start_day) for j in group}) == 1 for group in planned)
    # A seed's jobs in a row (each seed has a FitCache of its own), 180 s first.
    for group in planned:
        seeds = [j.seed for j in group]
        assert seeds == sorted(seeds, key=seeds.index) and len(seeds) == 3 * len(set(seeds))
    assert [j.startup_s for j in planned[0]] == [180.0, 600.0, 60.0]
    assert max(len(group) for group in planned) == 9
    # 60 s and 180 s fit the same horizon (in 300 s steps), so they share fits; 600 s a longer one.
    assert forecasting_settings(60.0, 20.0) == forecasting_settings(180.0, 20.0)
    assert forecasting_settings(600.0, 20.0) != forecasting_settings(180.0, 20.0)
    # Dev windows first, then test windows; the kinds take turns.
    splits = [j.split for j in found]
    assert splits == sorted(splits, key=lambda s: s != "dev")
    kinds = [windows["traces"][group[0].trace]["kind"] for group in planned if group[0].split == "test"]
    assert kinds[0:3] == ["diurnal", "spiky", "llm"]
