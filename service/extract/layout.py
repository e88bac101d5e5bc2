"""Which parts of an article are its body: bylines, datelines, photo captions, credits, links,
share buttons and headlines are not, and nobody is ever quoted in them."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Block:
    """One line-delimited block of the article; `body` is False for boilerplate.

    Headlines and subheadings are read (a headline quotes too: "Trump: '…'"), with `headline` set on
    the title so that what it says can be told from what the body reports."""

    start: int
    end: int
    text: str
    body: bool
    reason: str = ""
    headline: bool = False


_BOILERPLATE = [
    ("byline", re.compile(r"^\s*(?:by|from)\s+\S.{0,60}$", re.I)),
    ("related", re.compile(r"^\W*(?:related(?: article)?|also read|read more|see also)\b", re.I)),
    ("link", re.compile(r"^\s*<?https?://\S+>?\s*$|^\s*original url", re.I)),
    ("share", re.compile(r"icon-(?:facebook|twitter|whatsapp)|^\s*share\b", re.I)),
    ("follow", re.compile(r"\bfollow us\b|\bsubscribe\b", re.I)),
    (
        "date",
        re.compile(
            r"^\s*(?:\w{3},?\s+)?(?:\w+\s+\d{1,2},?\s+\d{4}|\d{1,2}\s+\w+\s+\d{4}|\w{3}\s+\w{3}\s+\d{1,2}\s+\d{4})\s*$"
        ),
    ),
    ("heading", re.compile(r"^\s*#")),
    ("key-points", re.compile(r"^\s*key points\s*$", re.I)),
    # A photo caption ends with its credit: "… 10 January 2025. EFE-EPA FILE/GIUSEPPE LAMI".
    ("caption", re.compile(r"\b[A-Z][A-Z-]+(?: FILE)?/[A-Z][A-Z .-]+\s*$")),
    # A bare credit line: "Leo Correa / AP / TASS", "kremlin.ru".
    ("credit", re.compile(r"^\s*(?:[\w .'-]+\s/\s)+[\w .'-]+\s*$|^\s*[\w-]+\.(?:ru|com|org|net|ua)\s*$")),
]
_SENTENCE_END = re.compile(r"[.!?…\"”’»)]\s*$")


def split_blocks(text: str, title: str = "") -> list[Block]:
    """Line blocks with their offsets, each marked body or boilerplate (with the reason)."""
    blocks: list[Block] = []
    title_key = _squash(title)
    for start, end in _logical_lines(text):
        line = text[start:end]
        reason = ""
        for name, pattern in _BOILERPLATE:
            if pattern.search(line):
                reason = name
                break
        key = _squash(line)
        # The title, also when the text breaks it over two lines.
        headline = bool(title_key and key and len(blocks) < 3 and (key == title_key or key in title_key))
        if reason == "heading" and line.lstrip().startswith("#"):
            reason = "" if headline else reason  # a markdown title is still the title
        if headline:
            blocks.append(Block(start, end, line, not reason, reason or "title", headline=True))
            continue
        if not reason and len(line.split()) < 3 and not line.rstrip().endswith(":"):
            reason = "fragment"  # "Cruz continued:" is no fragment: its quote follows
        # Short lines without a sentence end are headings and tags: read, each its own sentence.
        body = not reason
        if body and not _SENTENCE_END.search(line) and len(line.split()) < 12:
            reason = "heading"
        blocks.append(Block(start, end, line, body, reason))
    return blocks


def _logical_lines(text: str) -> list[tuple[int, int]]:
    """Non-empty lines, re-joining a paragraph that a stray line break cut in two: a line with no
    sentence end followed by one that starts in lower case ("…past mistakes,\n\nrespect the will…")."""
    lines = [(m.start(), m.end()) for m in re.finditer(r"[^\n]+", text) if m.group(0).strip()]
    merged: list[tuple[int, int]] = []
    for start, end in lines:
        if merged:
            prev_start, prev_end = merged[-1]
            prev, line = text[prev_start:prev_end], text[start:end].lstrip()
            if not _SENTENCE_END.search(prev) and line[:1].islower():
                merged[-1] = (prev_start, end)
                continue
        merged.append((start, end))
    return merged


def _squash(s: str) -> str:
    return re.sub(r"[\W_]+", "", s.lower())
