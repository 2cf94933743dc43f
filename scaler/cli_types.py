"""Argument types the command-line tools share: each refuses a value with the form it expected.

argparse prints an `ArgumentTypeError` after the flag's name, so a message here names the value and
what was expected, and the user sees which flag it was. `output_file` is the one check that touches
the filesystem: an output is refused before the work whose result it would hold.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path

from scaler.units import parse_duration_s


def duration(text: str) -> float:
    """A duration such as `90s`, `15m`, `2h` or `7d`, in seconds."""
    try:
        return parse_duration_s(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"`{text}`: {exc}") from None


def whole_number(minimum: int) -> Callable[[str], int]:
    """A whole number at least `minimum`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"`{text}` is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"`{text}`: expected a whole number >= {minimum}")
        return value

    return parse


def quantile(text: str) -> float:
    """A quantile in [0.5, 1), as a trigger's `quantile` takes it."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.5 <= value < 1:
        raise argparse.ArgumentTypeError(f"`{text}`: expected a quantile in [0.5, 1), e.g. 0.9")
    return value


def seconds(text: str) -> float:
    """A wait above 0: bare seconds, or a duration such as `500ms` or `5s`."""
    try:
        value = float(text)
    except ValueError:
        try:
            value = parse_duration_s(text)
        except ValueError:
            value = math.nan
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"`{text}`: expected seconds or a duration such as 5s, above 0")
    return value


def output_file(flag: str, path: Path, *, make_folder: bool = False) -> None:
    """Refuse an output file before the work whose result it would hold, not after: a folder, a folder
    that does not exist (made instead, with `make_folder`), or one that cannot be written (tried: the
    file opened for appending, and removed again when this made it). ValueError names the flag."""
    if path.is_dir():
        raise ValueError(f"{flag} {path}: is a folder; expected a file name")
    if make_folder:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValueError(
                f"{flag} {path}: the folder {path.parent} cannot be made ({exc.strerror or exc})"
            ) from None
    elif not path.parent.is_dir():
        raise ValueError(f"{flag} {path}: the folder {path.parent} does not exist")
    existed = path.exists()
    try:
        with path.open("a"):
            pass
    except OSError as exc:
        raise ValueError(f"{flag} {path}: cannot be written ({exc.strerror or exc})") from None
    if not existed:
        path.unlink()
