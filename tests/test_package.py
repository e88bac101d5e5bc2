"""The package as a deployment runs it, each in a fresh interpreter: a worker's entry point
(service/wsgi.py) with each backend, and the package installed non-editable, away from the
repository, finding its model and store by configuration only."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from servers import start_server

from service.config import REPO_ROOT, Settings
from service.encoders import TORCH_MODULES
from service.lean import SPACY_CLI_MODULES
from service.store import SqliteStore

pytestmark = pytest.mark.slow

PESKOV = (
    "Kremlin spokesman Dmitry Peskov stressed that Moscow will keep up a constant dialogue with the new Syrian "
    "authorities."
)

# Loads the app as a gunicorn worker does (import service.wsgi), answers the main endpoints, then
# prints which of TORCH_MODULES and of spaCy's command line (SPACY_CLI_MODULES) the interpreter has imported.
_WORKER = f"""
import json, sys
import service.wsgi as w
runtime = w.app.extensions["quotes_runtime"]
assert runtime.wait(180) and runtime.error is None, runtime.error
client = w.app.test_client()
text = "Kremlin spokesman Dmitry Peskov stressed that Moscow will keep up a dialogue with Syria."
for method, path, body in [
    ("GET", "/readyz", None),
    ("POST", "/v1/attributions", {{"text": text}}),
    ("POST", "/v1/similarity", {{"original": text, "rendering": "Moscow will keep up a dialogue."}}),
    ("POST", "/v1/extractions", {{"text": text}}),
    ("GET", "/v1/info", None),
    ("GET", "/docs", None),
    ("GET", "/", None),
]:
    answer = client.open(path, method=method, json=body)
    assert answer.status_code == 200, (path, answer.status_code, answer.get_data(as_text=True))
loaded = {{k.split(".")[0] for k, v in sys.modules.items() if v is not None}}
imported = sorted(loaded & set({list(TORCH_MODULES)!r}))
cli = sorted(loaded & set({list(SPACY_CLI_MODULES)!r}))
info = client.get("/v1/info").get_json()
print(json.dumps({{"imported": imported, "cli": cli, "package": w.__file__, "info": info}}))
"""


def _worker(env: dict[str, str], cwd: Path, pythonpath: str | None = None) -> dict[str, object]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("QUOTES_")}
    full.update(env, QUOTES_LOG_LEVEL="warning")
    if pythonpath:
        full["PYTHONPATH"] = pythonpath
    proc = subprocess.run(
        [sys.executable, "-c", _WORKER], env=full, cwd=cwd, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


@pytest.fixture(scope="module")
def store_copy(built_store: SqliteStore, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("package") / "quotes.sqlite3"
    shutil.copy(built_store.path, path)
    return path


def test_an_int8_worker_imports_no_torch_and_no_spacy_command_line(
    settings: Settings, onnx_embedder: object, store_copy: Path, tmp_path: Path
) -> None:  # onnx_embedder: the export is in place (or the test is skipped with the refusal)
    env = {"QUOTES_STORE_PATH": str(store_copy), "QUOTES_MODEL_DIR": str(settings.model_dir)}
    lean = _worker({**env, "QUOTES_EMBEDDING_BACKEND": "onnx-int8"}, tmp_path)
    assert lean["imported"] == [] and lean["cli"] == [], (lean["imported"], lean["cli"])
    assert lean["info"]["embedding"]["backend"] == "onnx-int8"  # type: ignore[index]
    # The same check sees torch and spaCy's command line when they are there: the torch backend
    # imports all of them.
    full = _worker({**env, "QUOTES_EMBEDDING_BACKEND": "torch"}, tmp_path)
    assert set(full["imported"]) == set(TORCH_MODULES), full["imported"]  # type: ignore[arg-type]
    assert set(full["cli"]) == set(SPACY_CLI_MODULES), full["cli"]  # type: ignore[arg-type]


def test_a_non_editable_install_serves_with_its_model_from_configuration(
    settings: Settings, onnx_embedder: object, store_copy: Path, tmp_path: Path
) -> None:
    # The sources a wheel is built from, copied out (an in-tree build would write build/ and
    # *.egg-info into the checkout), then installed into a directory of their own.
    src = tmp_path / "src"
    shutil.copytree(REPO_ROOT / "service", src / "service", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO_ROOT / name, src / name)
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", "--target", str(site), str(src)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    assert (
        not (site / "service" / "__init__.py").is_symlink() and (site / "service" / "all-MiniLM-L6-v2.sha256").is_file()
    )
    run = tmp_path / "elsewhere"  # neither the repository nor the sources: nothing found by relative path
    run.mkdir()
    env = {
        "QUOTES_STORE_PATH": str(store_copy),
        "QUOTES_MODEL_DIR": str(settings.model_dir),
        "QUOTES_EMBEDDING_BACKEND": "onnx-int8",
    }
    answered = _worker(env, run, pythonpath=str(site))
    assert Path(str(answered["package"])).is_relative_to(site), answered["package"]
    full = {**{k: v for k, v in os.environ.items() if not k.startswith("QUOTES_")}, **env, "PYTHONPATH": str(site)}
    verify = subprocess.run(
        [sys.executable, "-m", "service", "model", "verify"], env=full, cwd=run, capture_output=True, text=True
    )
    assert verify.returncode == 0 and "matches its checksums" in verify.stderr, verify.stderr


def _maps_torch(pid: int) -> bool:
    """Whether the process has torch's shared library mapped (what importing torch does)."""
    maps = Path(f"/proc/{pid}/maps").read_text(encoding="utf-8", errors="replace")
    return "libtorch" in maps


def test_gunicorn_serves_int8_without_torch_in_any_process(
    onnx_embedder: object, store_copy: Path, tmp_path: Path
) -> None:
    """The real gunicorn with onnx-int8: the master imports the code and loads spaCy before it forks
    (gunicorn.conf.py), and neither it nor any worker, a restarted one included, loads torch."""
    import psutil

    with start_server(tmp_path, store_copy, QUOTES_WORKERS="2", QUOTES_EMBEDDING_BACKEND="onnx-int8") as server:
        status, _, body = server.request("POST", "/v1/attributions", {"text": PESKOV})
        assert status == 200 and json.loads(body)["results"][0]["match"]["speaker"]["id"] == "dmitry-peskov"
        master = psutil.Process(server.process.pid)
        workers = [p.pid for p in master.children()]
        assert len(workers) == 2
        assert not any(_maps_torch(pid) for pid in [master.pid, *workers])
        # A worker gunicorn starts again (after a crash, or QUOTES_MAX_REQUESTS) starts from the master.
        os.kill(workers[0], signal.SIGKILL)
        server.wait_for_log(lambda ln: ln.get("message") == "ready" and ln.get("pid") not in workers)
        again = [p.pid for p in master.children()]
        assert len(again) == 2 and workers[0] not in again
        assert not any(_maps_torch(pid) for pid in again)
        assert server.request("POST", "/v1/attributions", {"text": PESKOV})[0] == 200
