"""Argument types the command-line tools share: each refuses a value with the form it expected. Pure.

argparse prints an `ArgumentTypeError` after the flag's name, so a message here names the value and
what was expected, and the user sees which flag it was.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

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
