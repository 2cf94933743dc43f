"""The autoscaling benchmark's section of benchmarks/README.md, rendered from the results JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

BEGIN, END = "<!-- autoscaling:begin -->", "<!-- autoscaling:end -->"


def markdown(saved: dict[str, Any], windows: dict[str, Any], keys: list[str], plots: Path) -> str:
    """The section's text."""
    return "## Autoscaling\n\n(rendering pending)\n"


def write_section(text: str, readme: Path) -> None:
    """Replace this benchmark's section of `readme` (between the markers), or append it."""
    block = f"{BEGIN}\n{text.rstrip()}\n{END}\n"
    old = readme.read_text() if readme.exists() else "# Benchmarks\n"
    if BEGIN in old and END in old:
        head, _, rest = old.partition(BEGIN)
        _, _, tail = rest.partition(END)
        new = head + block + tail.lstrip("\n")
    else:
        new = old.rstrip("\n") + "\n\n" + block
    readme.write_text(new)
