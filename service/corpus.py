"""Reading a corpus directory: article texts plus a `manifest.json` that describes them.

A corpus is any directory in this format, so a newsroom can point the service at its own:

    manifest.json   {"format": "quote-corpus/1", "articles": [{"file", "outlet", "url", "published",
                     "language", "title", "wire"?, "notes"?}, ...]}
    *.txt           article texts, UTF-8, kept exactly as received
    speakers.json   optional hand-kept speaker registry additions (see service/speakers.py)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .records import Article

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "quote-corpus/1"
# spaCy's parser needs ~1 GB of memory per 100k words; nothing a newsroom publishes is longer than this.
MAX_ARTICLE_CHARS = 200_000


class CorpusError(ValueError):
    """The corpus or an article is unusable; the message says which file and what is wrong."""


@dataclass(frozen=True, slots=True)
class ArticleMeta:
    outlet: str
    url: str
    published: dt.date | None
    language: str = "en"
    title: str = ""
    wire: str | None = None


def article_id(url: str) -> str:
    """Stable across rebuilds: the same URL is always the same article."""
    return "a_" + hashlib.sha256(url.strip().encode("utf-8")).hexdigest()[:12]


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def decode_text(data: bytes, where: str) -> str:
    """Bytes → article text, refusing what is not a text article (with the reason)."""
    if not data.strip():
        raise CorpusError(f"{where}: the text is empty")
    if b"\x00" in data:
        raise CorpusError(f"{where}: looks like a binary file (it contains NUL bytes), expected UTF-8 text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CorpusError(
            f"{where}: not valid UTF-8 (byte {exc.start} is {data[exc.start]:#04x}); convert it to UTF-8"
        ) from None
    return validate_text(text, where)


def validate_text(text: str, where: str) -> str:
    if not text.strip():
        raise CorpusError(f"{where}: the text is empty")
    if len(text) > MAX_ARTICLE_CHARS:
        raise CorpusError(
            f"{where}: {len(text):,} characters is longer than the {MAX_ARTICLE_CHARS:,} an article may have"
        )
    if "\x00" in text:
        raise CorpusError(f"{where}: the text contains NUL characters")
    return text


def read_text_file(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_ARTICLE_CHARS * 4:  # refuse before reading a huge file into memory
            raise CorpusError(f"{path}: {size:,} bytes is too large for an article")
        data = path.read_bytes()
    except OSError as exc:
        raise CorpusError(f"{path}: cannot be read ({exc.strerror})") from None
    return decode_text(data, str(path))


def parse_date(value: Any, where: str) -> dt.date | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise CorpusError(f"{where}: 'published' must be an ISO date string like 2025-01-29 or null")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CorpusError(f"{where}: 'published' is {value!r}, expected an ISO date like 2025-01-29") from None


def parse_url(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise CorpusError(f"{where}: 'url' is required")
    url = value.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or " " in url:
        raise CorpusError(f"{where}: 'url' is {url!r}, expected an absolute http(s) URL")
    return url


def make_article(text: str, meta: ArticleMeta, file: str | None = None) -> Article:
    return Article(
        id=article_id(meta.url),
        outlet=meta.outlet,
        url=meta.url,
        published=meta.published,
        language=meta.language,
        title=meta.title,
        text=text,
        file=file,
        wire=meta.wire,
        content_hash=content_hash(text),
    )


def _required_str(entry: dict[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise CorpusError(f"{where}: '{key}' is required and must be a non-empty string")
    return value.strip()


def load_manifest(corpus_dir: Path) -> list[tuple[str, ArticleMeta]]:
    path = corpus_dir / MANIFEST
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CorpusError(f"{corpus_dir}: no {MANIFEST}; a corpus directory needs one (see README)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CorpusError(f"{path}: cannot be read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise CorpusError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("articles"), list):
        raise CorpusError(f"{path}: expected an object with an 'articles' list")
    if raw.get("format", MANIFEST_FORMAT) != MANIFEST_FORMAT:
        raise CorpusError(f"{path}: format {raw.get('format')!r} is not {MANIFEST_FORMAT!r}")
    out: list[tuple[str, ArticleMeta]] = []
    seen_urls: dict[str, str] = {}
    for i, entry in enumerate(raw["articles"]):
        where = f"{path}: articles[{i}]"
        if not isinstance(entry, dict):
            raise CorpusError(f"{where}: expected an object")
        file = _required_str(entry, "file", where)
        if Path(file).name != file:
            raise CorpusError(f"{where}: 'file' must be a file name inside the corpus directory")
        where = f"{path}: articles[{i}] ({file})"
        url = parse_url(entry.get("url"), where)
        if url in seen_urls:
            raise CorpusError(f"{where}: url is also used by {seen_urls[url]}")
        seen_urls[url] = file
        wire = entry.get("wire")
        meta = ArticleMeta(
            outlet=_required_str(entry, "outlet", where),
            url=url,
            published=parse_date(entry.get("published"), where),
            language=str(entry.get("language") or "en"),
            title=str(entry.get("title") or ""),
            wire=wire.strip() if isinstance(wire, str) and wire.strip() else None,
        )
        out.append((file, meta))
    if not out:
        raise CorpusError(f"{path}: the manifest lists no articles")
    return out


def load_corpus(corpus_dir: Path) -> list[Article]:
    """All articles of a corpus, validated before anything is written anywhere."""
    articles = []
    for file, meta in load_manifest(corpus_dir):
        text = read_text_file(corpus_dir / file)
        articles.append(make_article(text, meta, file=file))
    return articles
