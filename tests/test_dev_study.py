"""benchmarks/dev_study.py's command line: a saved study reported again, and bad files refused by flag."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import dev_study


def _budget_run(key: str, minutes: int) -> dict[str, object]:
    return {
        "key": key,
        "variant": "gain0.03",
        "meta_budget": 0.01,
        "days": 1.0,
        "job": {"startup_s": 180.0},
        "policies": {"predictive": {"slo_violation_minutes": minutes, "gpu_hours": 100.0}},
    }


def test_a_saved_budget_study_is_reported_again_as_its_summary_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = tmp_path / "slo.json"
    saved.write_text(json.dumps([_budget_run("a|dev|7|1|180", 14), _budget_run("b|dev|7|1|180", 40)]))
    table = tmp_path / "slo.md"
    assert dev_study.main(["--results", str(saved), "--startups", "180", "--markdown", str(table)]) == 0
    # 14 of 14.4 minutes is within 30 %, 40 is not; no --against, so no frontier to compare with.
    assert "| gain0.03 | 180 s | 1/2 | 1.88 (0.97-2.78) | - [0/2] |" in table.read_text()
    assert "within 30 %: 1/2" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--results", "{missing}"], "--results {missing}: "),
        (["--results", "{bad}"], "expected an earlier --out"),
        (["--results", "{good}", "--against", "{bad}"], "--against {bad}: expected an earlier --out"),
        ([], "give --variant (one or more) and --out, or --results"),
    ],
)
def test_bad_files_and_missing_arguments_are_usage_errors_naming_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], fragment: str
) -> None:
    paths = {"missing": tmp_path / "none.json", "bad": tmp_path / "bad.json", "good": tmp_path / "good.json"}
    paths["bad"].write_text('{"a": 1}')
    paths["good"].write_text(json.dumps([_budget_run("a|dev|7|1|180", 14)]))
    named = {k: str(v) for k, v in paths.items()}
    with pytest.raises(SystemExit) as stopped:
        dev_study.main([a.format(**named) for a in args])
    assert stopped.value.code == 2
    assert fragment.format(**named) in capsys.readouterr().err
