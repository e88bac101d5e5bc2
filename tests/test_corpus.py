"""Corpus reading: a broken manifest or an unusable article is a clear error, never a traceback."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from service.corpus import CorpusError, decode_text, load_corpus, load_manifest, read_text_file
from tests.conftest import CORPUS, copy_corpus


def test_repository_corpus_loads_with_manifest_facts() -> None:
    articles = {a.file: a for a in load_corpus(CORPUS)}
    assert len(articles) == 5
    babel = articles["004_2a02bb8df87f53db.txt"]
    assert babel.outlet == "Babel" and babel.published is None
    assert articles["003_6196747b7796b346.txt"].url.endswith("with-russias-putin-a87973")
    # Texts are kept byte for byte as received.
    assert articles["000_dd569276cb987487.txt"].text == (CORPUS / "000_dd569276cb987487.txt").read_text("utf-8")
    assert len({a.id for a in articles.values()}) == 5


def _write_manifest(tmp_path: Path, payload: object) -> Path:
    corpus = copy_corpus(tmp_path / "c")
    (corpus / "manifest.json").write_text(payload if isinstance(payload, str) else json.dumps(payload), "utf-8")
    return corpus


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("{not json", "invalid JSON at line 1"),
        ({"articles": "x"}, "'articles' list"),
        ({"articles": []}, "lists no articles"),
        (
            {"articles": [{"file": "000_dd569276cb987487.txt", "url": "https://x.org/a"}]},
            "'outlet' is required",
        ),
        (
            {"articles": [{"file": "000_dd569276cb987487.txt", "outlet": "X", "url": "ftp:/x"}]},
            "absolute http(s) URL",
        ),
        (
            {
                "articles": [
                    {
                        "file": "000_dd569276cb987487.txt",
                        "outlet": "X",
                        "url": "https://x.org",
                        "published": "29/01/2025",
                    }
                ]
            },
            "expected an ISO date",
        ),
        (
            {"articles": [{"file": "../etc/passwd", "outlet": "X", "url": "https://x.org"}]},
            "inside the corpus directory",
        ),
        (
            {
                "articles": [
                    {"file": "000_dd569276cb987487.txt", "outlet": "X", "url": "https://x.org"},
                    {"file": "001_6018ef2b8371c47b.txt", "outlet": "Y", "url": "https://x.org"},
                ]
            },
            "url is also used by",
        ),
        (
            {"articles": [{"file": "missing.txt", "outlet": "X", "url": "https://x.org"}]},
            "missing.txt: cannot be read",
        ),
    ],
)
def test_broken_manifest_is_a_clear_error(tmp_path: Path, payload: object, message: str) -> None:
    corpus = _write_manifest(tmp_path, payload)
    with pytest.raises(CorpusError, match=re.escape(message)):
        load_corpus(corpus)


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match=r"no manifest\.json"):
        load_manifest(tmp_path)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"  \n\t ", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        ("Caf\u00e9 said \u201chello\u201d".encode("latin-1", "replace"), "not valid UTF-8"),
    ],
)
def test_unusable_text(data: bytes, message: str) -> None:
    with pytest.raises(CorpusError, match=message):
        decode_text(data, "input")


def test_five_megabyte_file_is_refused_before_reading(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text("Peskov said the talks went well. " * 160_000, "utf-8")
    assert big.stat().st_size > 5_000_000
    with pytest.raises(CorpusError, match="too large"):
        read_text_file(big)


def test_byte_order_mark_is_not_text() -> None:
    assert decode_text("\ufeffHello there, world.".encode(), "x") == "Hello there, world."
