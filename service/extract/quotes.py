"""Finding quotations: pairing straight, curly, low-9 and angle quotation marks inside body blocks.

Apostrophes and single quotes are not quotation marks here: in news copy they mark headlines and
scare quotes, and telling them from apostrophes ("Syria's") costs more precision than it buys.
"""

from __future__ import annotations

from dataclasses import dataclass

from .layout import Block

_OPENERS = {"“", "„", "«"}
_CLOSERS = {"”", "»"}
_MARKS = _OPENERS | _CLOSERS | {'"'}
# A quotation longer than this is an unbalanced mark, not a quote.
MAX_QUOTE_CHARS = 1_500


@dataclass(frozen=True, slots=True)
class Quotation:
    open: int  # offset of the opening mark
    close: int  # offset just past the closing mark (or the block end when unbalanced)
    content_start: int
    content_end: int
    balanced: bool

    def content(self, text: str) -> str:
        return text[self.content_start : self.content_end]


def _is_opening(text: str, i: int, block_start: int) -> bool:
    before = text[i - 1] if i > block_start else " "
    after = text[i + 1] if i + 1 < len(text) else " "
    return (before.isspace() or before in "([—–-:;/") and not after.isspace()


def find_quotations(text: str, blocks: list[Block]) -> list[Quotation]:
    quotes: list[Quotation] = []
    for block in blocks:
        if not block.body:
            continue
        open_at: int | None = None
        for i in range(block.start, block.end):
            c = text[i]
            if c not in _MARKS:
                continue
            if open_at is None:
                # A closing curly mark that stands where an opening one belongs is a typo'd opener.
                if c in _OPENERS or (c in {'"', "”"} and _is_opening(text, i, block.start)):
                    open_at = i
                continue
            if c in _OPENERS and _is_opening(text, i, block.start) and i - open_at > 1:
                # An opener while a quote is open: the earlier one was never closed.
                quotes.append(_make(text, open_at, i, balanced=False))
                open_at = i
                continue
            # „…“ (German style) closes with the mark that opens English quotations.
            if c in _CLOSERS or c == '"' or (c == "“" and text[open_at] == "„"):
                quotes.append(_make(text, open_at, i + 1, balanced=True))
                open_at = None
        if open_at is not None:
            # Multi-paragraph quotes leave the paragraph open; otherwise the mark is unbalanced.
            quotes.append(_make(text, open_at, block.end, balanced=False))
    return [q for q in quotes if q.content_end > q.content_start and q.close - q.open <= MAX_QUOTE_CHARS]


def _make(text: str, open_at: int, close: int, balanced: bool) -> Quotation:
    start = open_at + 1
    end = close - 1 if balanced else close
    while start < end and text[start].isspace():
        start += 1
    while end > start and (text[end - 1].isspace() or text[end - 1] == ","):
        end -= 1  # the comma before a closing mark belongs to the journalist's sentence
    return Quotation(open_at, close, start, end, balanced)
