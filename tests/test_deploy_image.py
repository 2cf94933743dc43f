"""The image and the lock files: the Dockerfile is multi-stage on one pinned base, installs from the
hashed lock, runs as a non-root user with a HOME; the build context holds what it copies; the locks pin
every package with hashes, agree with each other and cover pyproject's dependencies; `make install`
uses them. (No Docker daemon here: the image itself is built in CI or by hand, see README "Install".)"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()
LOCK = ROOT / "requirements" / "lock.txt"
DEV_LOCK = ROOT / "requirements" / "lock-dev.txt"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    lines = [
        line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[tuple[str, str], str]:
    """(package, marker) -> version; fails on a requirement without a hash."""
    text = path.read_text()
    found: dict[tuple[str, str], str] = {}
    for block in re.split(r"\n(?=\S)", text):
        first = block.splitlines()[0]
        if first.startswith("#") or not first.strip():
            continue
        match = PIN.match(first)
        assert match, f"{path.name}: `{first}` is not pinned with =="
        assert "--hash=sha256:" in block, f"{path.name}: {match[1]} has no hash"
        found[(normalise(match[1]), (match[3] or "").strip())] = match[2]
    return found


def names(requirements: list[str]) -> set[str]:
    return {normalise(re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0]) for requirement in requirements}


def test_dockerfile_is_multi_stage_on_one_pinned_base() -> None:
    steps = instructions()
    args = dict(arg.split("=", 1) for kind, arg in steps if kind == "ARG" and "=" in arg)
    bases = [arg.split()[0] for kind, arg in steps if kind == "FROM"]
    assert len(bases) >= 2, "a build stage and a runtime stage"
    assert set(bases) == {"${PYTHON_IMAGE}"}
    image = args["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.1[12]\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", image), image
    python = image.split(":")[1].split("-")[0]
    assert SpecifierSet(PROJECT["requires-python"]).contains(python), (
        f"{python} is not {PROJECT['requires-python']}"
    )


def test_dockerfile_installs_from_the_lock_with_hashes_then_the_project_alone() -> None:
    runs = [arg for kind, arg in instructions() if kind == "RUN"]
    copies = [arg for kind, arg in instructions() if kind == "COPY"]
    assert any("requirements/lock.txt" in copy for copy in copies)
    assert any("--require-hashes" in run and "-r /tmp/lock.txt" in run for run in runs)
    assert any("--no-deps" in run and "--no-build-isolation" in run for run in runs)
    assert not any(re.search(r"pip install(?!.*(--require-hashes|--no-deps))", run) for run in runs)


def test_the_image_runs_as_a_non_root_user_with_a_home() -> None:
    steps = instructions()
    final = steps[max(i for i, (kind, _) in enumerate(steps) if kind == "FROM") :]
    users = [arg for kind, arg in final if kind == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    uid = users[-1].split(":")[0]
    creation = " ".join(arg for kind, arg in final if kind == "RUN")
    assert f"--uid {uid}" in creation and "--create-home --home-dir /home/prescaler" in creation
    environment = " ".join(arg for kind, arg in final if kind == "ENV")
    assert "HOME=/home/prescaler" in environment
    assert ("ENTRYPOINT", '["prescaler"]') in final
    # The Deployment runs as the same user.
    deployment = (ROOT / "deploy" / "kubernetes" / "base" / "deployment.yaml").read_text()
    assert f"runAsUser: {uid}" in deployment


def test_the_build_context_holds_what_the_dockerfile_copies_and_no_more() -> None:
    ignore = [
        line
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert ignore[0] == "*", "everything excluded first"
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    sources = {
        source
        for kind, arg in instructions()
        if kind == "COPY" and "--from" not in arg
        for source in arg.split()[:-1]
    }
    assert sources == allowed


@pytest.mark.parametrize("lock", [LOCK, DEV_LOCK], ids=lambda path: path.name)
def test_locks_pin_every_package_with_hashes_and_cover_pyproject(lock: Path) -> None:
    pinned = pins(lock)
    locked = {name for name, _ in pinned}
    wanted = names(PROJECT["dependencies"]) | {"setuptools", "wheel"}
    if lock == DEV_LOCK:
        wanted |= names(PROJECT["optional-dependencies"]["dev"])
    else:
        assert not names(["pytest", "mypy", "ruff", "locust"]) & locked, "dev tools stay out of the image"
    assert wanted <= locked, f"missing from {lock.name}: {sorted(wanted - locked)}"
    assert lock.read_text().startswith(
        "# This file was autogenerated by uv via the following command:\n#    requirements/compile.sh\n"
    )


def test_the_runtime_lock_has_the_dev_locks_versions() -> None:
    dev = pins(DEV_LOCK)
    for key, version in pins(LOCK).items():
        assert dev.get(key) == version, f"{key}: {version} in lock.txt, {dev.get(key)} in lock-dev.txt"


def test_make_install_uses_the_dev_lock_with_hashes() -> None:
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("$(BIN)/prescaler: ", 1)[1].split("\n\n", 1)[0]
    assert "requirements/lock-dev.txt" in recipe.splitlines()[0], "a changed lock reinstalls"
    assert "--require-hashes -r requirements/lock-dev.txt" in recipe
    assert "--no-deps" in recipe
