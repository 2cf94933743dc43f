"""The install and operating guides say what the code does: every `prescaler` command in their shell
blocks parses with prescaler's own parser (a renamed or removed flag fails here, not in a new user's
terminal), the trigger metadata they pass to `call` is metadata prescaler accepts, and every repository
path and test they name exists."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from scaler import call
from scaler.cli import build_parser
from scaler.trigger import parse_trigger

ROOT = Path(__file__).resolve().parent.parent
GUIDES = ("README.md", "docs/end-to-end.md", "docs/operations.md", "docs/compatibility.md")
SHELL_BLOCK = re.compile(r"```(?:sh|bash)\n(.*?)```", re.S)
COMMAND = re.compile(r"^(?:\.venv/bin/)?prescaler\s")
REPO_PATH = re.compile(
    r"(?<![\w/.-])((?:deploy|scaler|tests|docs|requirements|benchmarks|forecasting|proto)/[\w./-]*[\w/])"
    r"(?:::(\w+))?"
)
KUBECTL_REFERENCE = re.compile(r"(?:rollout status|port-forward|logs -f)\s+$")
"""`kubectl ... deploy/prescaler` names a Deployment, not a folder."""


def _commands(text: str) -> list[str]:
    """The `prescaler ...` command lines of the shell blocks, continuations joined, comments and a
    trailing `&` dropped."""
    found = []
    for block in SHELL_BLOCK.findall(text):
        for line in re.sub(r"\s*\\\n\s*", " ", block).splitlines():
            line = re.split(r"\s#\s", line, maxsplit=1)[0].strip().removesuffix("&").strip()
            if COMMAND.match(line):
                found.append(line)
    return found


@pytest.mark.parametrize("guide", GUIDES)
def test_every_prescaler_command_in_the_guide_parses(guide: str) -> None:
    commands = _commands((ROOT / guide).read_text())
    if guide in ("README.md", "docs/end-to-end.md"):
        assert commands, f"{guide} shows no prescaler command any more; the test reads nothing"
    for line in commands:
        words = shlex.split(line)[1:]
        try:
            args = build_parser(words).parse_args(words)
        except SystemExit:
            pytest.fail(f"{guide}: `{line}` does not parse")
        if args.command == "call" and not (args.metadata_json or "").startswith("@"):
            metadata = call.metadata_from(args.metadata, args.metadata_json, args.sets)
            parse_trigger(metadata)  # raises, naming the key, if the guide's metadata is refused


@pytest.mark.parametrize("guide", GUIDES)
def test_every_path_and_test_the_guide_names_exists(guide: str) -> None:
    text = (ROOT / guide).read_text()
    missing = []
    for match in REPO_PATH.finditer(text):
        path, test = match.groups()
        if KUBECTL_REFERENCE.search(text[max(0, match.start() - 20) : match.start()]):
            continue
        if not (ROOT / path).exists():
            missing.append(path)
        elif test is not None and f"def {test}(" not in (ROOT / path).read_text():
            missing.append(f"{path}::{test}")
    assert missing == []


def test_the_scan_sees_commands_continuations_and_paths() -> None:
    text = (
        "```sh\n.venv/bin/prescaler call all --set a=1 \\\n  --set b=2 &   # why\n"
        "kubectl -n keda rollout status deploy/prescaler\n```\nsee `deploy/loadtest/prometheus.yml`\n"
    )
    assert _commands(text) == [".venv/bin/prescaler call all --set a=1 --set b=2"]
    assert [m.group(1) for m in REPO_PATH.finditer(text)] == [
        "deploy/prescaler",
        "deploy/loadtest/prometheus.yml",
    ]
