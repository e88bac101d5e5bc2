"""The command line on bad input: one clear line and an exit status, never a traceback."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from service.api import create_app
from service.api.runtime import Runtime
from service.config import REPO_ROOT, Settings
from service.embed import Embedder
from service.store import SqliteStore
from tests.conftest import CORPUS, copy_corpus


def _run(*args: str, stdin: bytes | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "service", *args],
        input=stdin.decode("utf-8", "replace") if stdin is not None else None,
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=300,
        env={**os.environ, **(env or {})},
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"\x00\x01\x02binary\xff", "binary"),
        ("Peskov a dit « bonjour ».".encode("latin-1", "replace"), "not valid UTF-8"),
    ],
)
def test_extract_refuses_unusable_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "input.txt"
    path.write_bytes(content)
    proc = _run("extract", str(path))
    assert proc.returncode == 2 and message in proc.stderr


def test_extract_refuses_a_five_megabyte_file(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_bytes(b"Peskov said the talks went well. " * 160_000)
    proc = _run("extract", str(path))
    assert proc.returncode == 2 and "too large" in proc.stderr


def test_extract_reads_stdin_and_touches_no_store(tmp_path: Path) -> None:
    store = tmp_path / "absent.sqlite3"
    text = b'"We will continue dialogue with the Syrian authorities," Kremlin spokesman Dmitry Peskov said. "Unbalanced'
    proc = _run("extract", "-", stdin=text, env={"QUOTES_STORE_PATH": str(store)})
    assert proc.returncode == 0, proc.stderr
    mentions = json.loads(proc.stdout)["mentions"]
    assert mentions[0]["speaker"]["id"] == "dmitry-peskov"
    assert mentions[0]["spans"][0]["start"] == 1
    assert not store.exists()


def test_build_with_a_broken_manifest_is_a_clear_error_and_keeps_nothing(tmp_path: Path) -> None:
    corpus = copy_corpus(tmp_path / "c")
    (corpus / "manifest.json").write_text('{"articles": [{"file": "000_dd569276cb987487.txt", "outlet": "X"}]}')
    store = tmp_path / "s.sqlite3"
    proc = _run("build", "--corpus", str(corpus), "--store", str(store))
    assert proc.returncode == 2 and "'url' is required" in proc.stderr
    assert not store.exists()


def test_bad_configuration_stops_with_one_message() -> None:
    proc = _run("speakers", env={"QUOTES_MAX_TEXT_CHARS": "lots"})
    assert proc.returncode == 2 and "QUOTES_MAX_TEXT_CHARS='lots' is not an integer" in proc.stderr


def test_build_add_list_show_round_trip(tmp_path: Path) -> None:
    corpus = copy_corpus(tmp_path / "c", drop=("004",))
    env = {"QUOTES_STORE_PATH": str(tmp_path / "s.sqlite3"), "QUOTES_CORPUS_DIR": str(corpus)}
    assert _run("build", env=env).returncode == 0
    assert "up to date" in _run("build", env=env).stderr
    added = _run(
        "add",
        str(CORPUS / "004_2a02bb8df87f53db.txt"),
        "--outlet",
        "Babel",
        "--published",
        "2025-01-29",
        "--url",
        "https://babel.ua/en/news/114936-reuters-syria-s-new-government-demands-russia-extradite-bashar-assad",
        env=env,
    )
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["status"] == "added"
    disputed = _run("quotes", "--disputed", "--json", env=env)
    quotes = json.loads(disputed.stdout)["quotes"]
    assert any("restoration" in q["text"] or "restoring" in q["text"] for q in quotes)
    shown = _run("quote", quotes[0]["id"], env=env)
    assert shown.returncode == 0 and "said by" in shown.stdout
    speakers = _run("speakers", env=env)
    assert "dmitry-peskov" in speakers.stdout and "tass" not in speakers.stdout
    bad_date = _run(
        "add",
        str(CORPUS / "004_2a02bb8df87f53db.txt"),
        "--outlet",
        "B",
        "--url",
        "https://b.ua/x",
        "--published",
        "yesterday",
        env=env,
    )
    assert bad_date.returncode == 2 and "ISO date" in bad_date.stderr


def test_json_output_is_the_api_answer(built_store: SqliteStore, embedder: Embedder, nlp: object) -> None:
    """`--json` and `extract` print what the API answers for the same store: one shape (service/schemas.py)."""
    settings = dataclasses.replace(Settings.from_env({}), store_path=built_store.path)
    client = create_app(settings, Runtime.preloaded(settings, embedder, nlp, built_store)).test_client()
    env = {"QUOTES_STORE_PATH": str(built_store.path)}

    def same(args: tuple[str, ...], path: str, body: dict[str, str] | None = None) -> Any:
        proc = _run(*args, stdin=body["text"].encode() if body else None, env=env)
        assert proc.returncode == 0, proc.stderr
        answer = client.post(path, json=body) if body else client.get(path)
        assert answer.status_code == 200
        assert json.loads(proc.stdout) == answer.get_json()
        return answer.get_json()

    page = same(("quotes", "--json", "--limit", "100"), "/v1/quotes?limit=100")
    disputed = next(q for q in page["quotes"] if q["disputed"])
    detail = same(("quote", disputed["id"], "--json"), f"/v1/quotes/{disputed['id']}")
    assert len({v["speaker"]["id"] for v in detail["variants"]}) > 1 and all(
        v["speaker"]["name"] for v in detail["variants"]
    )
    assert same(("speakers", "--json"), "/v1/speakers")["speakers"]
    text = '"We will continue dialogue," Kremlin spokesman Dmitry Peskov told reporters. Polls show Syrians want peace.'
    mentions = same(("extract", "-"), "/v1/extractions", {"text": text})["mentions"]
    assert [m["cue_class"] for m in mentions] == ["speech", "evidence"]
    assert mentions[0]["speaker"] == {"id": "dmitry-peskov", "name": "Dmitry Peskov"}
