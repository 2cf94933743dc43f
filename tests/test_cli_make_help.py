"""`make help` lists the targets with the variables in their help expanded, as a new user reads it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
@pytest.mark.parametrize("port", ["9090", "9191"])
def test_make_help_expands_variables(port: str) -> None:
    done = subprocess.run(
        ["make", "-s", "-C", str(ROOT), "help", f"PORT={port}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert f"serve on :{port} " in done.stdout
    assert "$(" not in done.stdout
    for target in ("install", "run", "demo", "test", "check"):
        assert f"{target} " in done.stdout
