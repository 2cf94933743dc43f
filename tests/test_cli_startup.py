"""`prescaler --help`, `--version` and `call` start without the forecasting and plotting libraries;
every subcommand is still registered, lazily, under its name."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from scaler.cli import COMMANDS, build_parser

HEAVY = ("statsforecast", "matplotlib", "numpy", "forecasting", "scaler.server.app", "scaler.sim")

_PROBE = """
import json, sys
from scaler.cli import main
try:
    main(json.loads(sys.argv[1]))
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)))
"""


def _imported(argv: list[str]) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(argv)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["--help"], id="help"),
        pytest.param(["--version"], id="version"),
        pytest.param(["call", "--help"], id="call-help"),
        pytest.param(["call", "IsActive", "--address", "127.0.0.1:1", "--timeout", "0.2"], id="call"),
        pytest.param(["backtest", "--help"], id="backtest-help"),
        pytest.param(["serve", "--help"], id="serve-help"),
    ],
)
def test_light_commands_import_no_heavy_module(argv: list[str]) -> None:
    imported = _imported(argv)
    heavy = sorted(m for m in imported if any(m == h or m.startswith(h + ".") for h in HEAVY))
    assert heavy == []


def test_every_command_registers_under_its_table_name() -> None:
    parser = build_parser()  # all registered, as when a subcommand runs
    subparsers = next(a for a in parser._actions if a.dest == "command")
    assert list(subparsers.choices) == [c.name for c in COMMANDS]  # type: ignore[union-attr]
    for command in COMMANDS:
        assert subparsers.choices[command.name].get_default("func") is not None  # type: ignore[index]


def test_top_level_help_lists_every_command_without_loading_them(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser(["--help"]).parse_args(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for command in COMMANDS:
        assert command.name in out and command.help.split()[0] in out
