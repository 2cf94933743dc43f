"""Where a benchmark's numbers came from (the commit, and whether the tree differed from it), and the
one way every benchmark prints its report and writes it to `--out`."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def git(*args: str) -> str:
    """git's stdout in the project root; "" when git is missing or fails."""
    try:
        done = subprocess.run(["git", *args], capture_output=True, text=True, cwd=ROOT, check=False)
    except OSError:
        return ""
    return done.stdout.strip()


def commit(outputs: Sequence[Path] = ()) -> str:
    """The short commit, with "(plus uncommitted changes)" when the tree differs from it anywhere
    but in `outputs` (what the benchmark itself rewrites)."""
    head = git("rev-parse", "--short", "HEAD") or "unknown"
    excluded = [f":!{path.resolve().relative_to(ROOT)}" for path in outputs]
    changed = git("status", "--porcelain", "--", ".", *excluded)
    return head + (" (plus uncommitted changes)" if changed else "")


def emit(text: str, out: Path | None) -> None:
    """Print the report and, with `--out`, write it there too."""
    print(text)
    if out is not None:
        out.write_text(text)
