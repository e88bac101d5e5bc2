"""Finding quotations: pairing quotation marks inside body blocks.

Double marks: straight, curly, low-9, angle, and the doubled apostrophe some wires print ('' … '').
A double quotation left open at the end of a paragraph runs on into the next one when that paragraph
opens with a mark (the news convention for a quote over several paragraphs).

Single marks (‘ … ’ and ' … ') quote in headlines and British copy, and nest inside double quotes.
They are told from apostrophes by what stands around them ("Syria's", "don’t", "voters’ choice"),
must close within their paragraph, and inside a double quotation they stay part of its content.
"""

from __future__ import annotations

from dataclasses import dataclass

from .layout import Block

_DOUBLE_OPENERS = {"“", "„", "«"}
_DOUBLE_CLOSERS = {"”", "»"}
_DOUBLE = _DOUBLE_OPENERS | _DOUBLE_CLOSERS | {'"'}
_SINGLE = {"‘", "’", "'"}
# A quotation longer than this is an unbalanced mark, not a quote.
MAX_QUOTE_CHARS = 3_000
MAX_SINGLE_QUOTE_WORDS = 40
_OPEN_BEFORE = "([{—–-:;/"
_CLOSE_AFTER = ".,;:!?)]}—–-…"


@dataclass(frozen=True, slots=True)
class Quotation:
    open: int  # offset of the opening mark
    close: int  # offset just past the closing mark (or the block end when unbalanced)
    content_start: int
    content_end: int
    balanced: bool
    single: bool = False  # ‘…’ or '…'

    def content(self, text: str) -> str:
        return text[self.content_start : self.content_end]


def _is_opening(text: str, i: int, block_start: int, width: int = 1) -> bool:
    before = text[i - 1] if i > block_start else " "
    after = text[i + width] if i + width < len(text) else " "
    return (before.isspace() or before in _OPEN_BEFORE or before in _DOUBLE) and not after.isspace()


def _is_closing(text: str, i: int, block: Block) -> bool:
    before = text[i - 1] if i > block.start else " "
    after = text[i + 1] if i + 1 < block.end else " "
    return not before.isspace() and (after.isspace() or after in _CLOSE_AFTER)


def _double_marks(text: str, block: Block) -> list[tuple[int, int]]:
    """(offset, width) of every double mark of the block; '' counts as one mark."""
    marks = []
    i = block.start
    while i < block.end:
        c = text[i]
        if c == "'" and text[i + 1 : i + 2] == "'":
            marks.append((i, 2))
            i += 2
            continue
        if c in _DOUBLE:
            marks.append((i, 1))
        i += 1
    return marks


def _pair_double(text: str, block: Block) -> list[Quotation]:
    quotes: list[Quotation] = []
    open_at: tuple[int, int] | None = None
    for i, width in _double_marks(text, block):
        c = text[i]
        if open_at is None:
            # A closing curly mark that stands where an opening one belongs is a typo'd opener.
            if c in _DOUBLE_OPENERS or (c in {'"', "”", "'"} and _is_opening(text, i, block.start, width)):
                open_at = (i, width)
            continue
        start, open_width = open_at
        if c in _DOUBLE_OPENERS and _is_opening(text, i, block.start) and i - start > 1:
            # An opener while a quote is open: the earlier one was never closed.
            quotes.append(_make(text, start, open_width, i, balanced=False))
            open_at = (i, width)
            continue
        # „…“ (German style) closes with the mark that opens English quotations; so does a typo'd
        # closer that stands where a closing mark belongs ('…for her here,“ said Jim Clyburn').
        if (
            c in _DOUBLE_CLOSERS
            or c in {'"', "'"}
            or (c == "“" and (text[start] == "„" or _is_closing(text, i, block)))
        ):
            quotes.append(_make(text, start, open_width, i + width, balanced=True, close_width=width))
            open_at = None
    if open_at is not None:
        # Multi-paragraph quotes leave the paragraph open; otherwise the mark is unbalanced.
        quotes.append(_make(text, open_at[0], open_at[1], block.end, balanced=False))
    return quotes


def _pair_single(text: str, block: Block, inside: list[Quotation]) -> list[Quotation]:
    """Single quotations of a block, outside its double ones (nested quotes belong to the outer one)."""

    def nested(i: int) -> bool:
        return any(q.open <= i < q.close for q in inside)

    quotes: list[Quotation] = []
    open_at: int | None = None
    for i in range(block.start, block.end):
        c = text[i]
        if c not in _SINGLE or nested(i):
            continue
        before = text[i - 1] if i > block.start else " "
        after = text[i + 1] if i + 1 < block.end else " "
        if before.isalnum() and after.isalnum():
            continue  # an apostrophe inside a word
        if open_at is None:
            if c != "’" and (before.isspace() or before in _OPEN_BEFORE or i == block.start) and after.isalnum():
                open_at = i
            continue
        if c != "‘" and not before.isspace() and (after.isspace() or after in _CLOSE_AFTER or i + 1 == block.end):
            if before == "s" and after.isspace() and text[i + 1 : i + 2].isspace() and _is_possessive(text, i, block):
                continue
            quote = _make(text, open_at, 1, i + 1, balanced=True, single=True)
            if len(quote.content(text).split()) <= MAX_SINGLE_QUOTE_WORDS:
                quotes.append(quote)
            open_at = None
        elif c == "‘" or (c == "'" and (before.isspace() or before in _OPEN_BEFORE) and after.isalnum()):
            open_at = i  # an earlier opener was an apostrophe ('90s) or never closed
    return quotes


def _is_possessive(text: str, i: int, block: Block) -> bool:
    """`voters’ choice`: a plural possessive, when another mark still closes the quote later on."""
    rest = text[i + 1 : block.end]
    return any(m in rest for m in ("’", "'"))


def find_quotations(text: str, blocks: list[Block]) -> list[Quotation]:
    quotes: list[Quotation] = []
    for block in blocks:
        if not block.body:
            continue
        doubles = _pair_double(text, block)
        quotes.extend(doubles)
        quotes.extend(_pair_single(text, block, doubles))
    quotes.sort(key=lambda q: q.open)
    return [q for q in quotes if q.content_end > q.content_start and q.close - q.open <= MAX_QUOTE_CHARS]


def _make(
    text: str, open_at: int, width: int, close: int, balanced: bool, single: bool = False, close_width: int = 1
) -> Quotation:
    start = open_at + width
    end = close - close_width if balanced else close
    while start < end and text[start].isspace():
        start += 1
    while end > start and (text[end - 1].isspace() or text[end - 1] == ","):
        end -= 1  # the comma before a closing mark belongs to the journalist's sentence
    return Quotation(open_at, close, start, end, balanced, single)
