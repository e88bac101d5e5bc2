"""The locks alone decide what is installed (`pip install --require-hashes --no-deps`), so each must be
complete: every requirement of every locked distribution, extras included, met by a pinned entry.

The requirements are read from the installed distributions' metadata (the test venv is the dev lock,
installed exactly), walked from pyproject's own dependencies with the extras each edge asks for.
"""

from __future__ import annotations

import importlib.metadata as md
import re
import tomllib
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
LOCKS = ROOT / "requirements"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", re.M)


def read_lock(path: Path) -> dict[str, Version]:
    return {canonicalize_name(name): Version(version) for name, version in _PIN.findall(path.read_text())}


def roots(extra: str | None) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    if extra:
        reqs += project["optional-dependencies"][extra]
    return [Requirement(r) for r in reqs]


def unmet(pins: dict[str, Version], start: list[Requirement]) -> list[str]:
    """Every requirement reachable from `start` that the pins do not satisfy, as readable lines."""
    env = default_environment()
    problems: list[str] = []
    seen: set[tuple[str, str]] = set()
    todo: list[tuple[Requirement, str]] = [(r, "pyproject.toml") for r in start]
    while todo:
        req, wanted_by = todo.pop()
        name = canonicalize_name(req.name)
        pinned = pins.get(name)
        if pinned is None:
            problems.append(f"{req} (wanted by {wanted_by}) has no pin")
            continue
        if not req.specifier.contains(pinned, prereleases=True):
            problems.append(f"{req} (wanted by {wanted_by}) is not met by the pin {name}=={pinned}")
        for extra in {"", *req.extras}:
            if (name, extra) in seen:
                continue
            seen.add((name, extra))
            for line in md.requires(name) or []:
                dep = Requirement(line)
                if dep.marker is None:
                    if extra:
                        continue  # unconditional requirements were walked with the bare name
                elif not dep.marker.evaluate({**env, "extra": extra}):
                    continue
                todo.append((dep, f"{name}[{extra}]" if extra else name))
    return problems


@pytest.mark.parametrize(("lock", "extra"), [("lock.txt", None), ("lock-dev.txt", "dev")])
def test_every_requirement_of_every_locked_distribution_is_pinned(lock: str, extra: str | None) -> None:
    assert unmet(read_lock(LOCKS / lock), roots(extra)) == []


def test_an_incomplete_lock_is_caught() -> None:
    """The check itself: a lock that misses weasel's smart-open[http] extra (requests) fails it."""
    pins = read_lock(LOCKS / "lock.txt")
    del pins["requests"]
    problems = unmet(pins, roots(None))
    assert any(p.startswith("requests") and "no pin" in p for p in problems), problems
    pins = read_lock(LOCKS / "lock.txt")
    pins["smart-open"] = Version("1.0.0")
    assert any("smart-open" in p and "not met" in p for p in unmet(pins, roots(None)))


def test_the_locks_agree_and_the_venv_is_the_dev_lock() -> None:
    runtime, dev = read_lock(LOCKS / "lock.txt"), read_lock(LOCKS / "lock-dev.txt")
    assert {n: v for n, v in runtime.items() if dev.get(n) != v} == {}, "the dev lock must pin what runtime pins"
    installed = {n: Version(md.version(n)) for n in dev}
    assert {n: (v, installed[n]) for n, v in dev.items() if installed[n] != v} == {}


def test_every_pin_has_a_hash() -> None:
    for lock in ("lock.txt", "lock-dev.txt"):
        entries = re.split(r"\n(?=\S)", (LOCKS / lock).read_text())
        without = [e.split()[0] for e in entries if _PIN.match(e) and "--hash=sha256:" not in e]
        assert without == [], f"{lock}: pins without a hash"
