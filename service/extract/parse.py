"""One parse of an article: its blocks, its quotations, and spaCy's analysis of the masked text.

The text is masked before it is parsed: boilerplate becomes blank space (nobody speaks in a caption),
and every quotation's content becomes one placeholder word of the same length, so offsets stay
aligned, spaCy does not split sentences inside quotations, and the quoted words are not parsed as
the journalist's own (a quotation hangs in the tree as one word under its cue).
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

from spacy.tokens import Doc
from spacy.tokens import Span as SpacySpan

from ..nlp import MASK_CHAR
from ..records import Article
from .cues import is_cue_form
from .layout import Block, split_blocks
from .quotes import Quotation, find_quotations


@dataclass(slots=True)
class ParsedArticle:
    article: Article
    blocks: list[Block]  # body blocks only, in order
    quotations: list[Quotation]
    doc: Doc
    _by_token: dict[int, Quotation] = field(default_factory=dict)
    _token_of: dict[int, int] = field(default_factory=dict)  # a quotation's opening offset -> its placeholder
    _token_starts: list[int] = field(default_factory=list)
    _block_starts: list[int] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self.article.text

    def quote_at(self, token_index: int) -> Quotation | None:
        """The quotation whose placeholder is this token."""
        return self._by_token.get(token_index)

    def quote_token(self, q: Quotation) -> int:
        """The placeholder token of a quotation (the token at its content, if it has none)."""
        return self._token_of.get(q.open, self.token_at(q.content_start))

    def token_at(self, offset: int) -> int:
        return max(bisect.bisect_right(self._token_starts, offset) - 1, 0)

    def block_index(self, offset: int) -> int | None:
        i = bisect.bisect_right(self._block_starts, offset) - 1
        if i >= 0 and offset < self.blocks[i].end:
            return i
        return None

    def block_at(self, offset: int) -> Block | None:
        i = self.block_index(offset)
        return self.blocks[i] if i is not None else None

    def blocks_start(self, index: int) -> int:
        return self.blocks[index].start

    def quotations_in(self, sent: SpacySpan) -> list[Quotation]:
        return [q for t in sent if (q := self._by_token.get(t.i)) is not None]

    def quotations_between(self, ranges: list[tuple[int, int]]) -> list[Quotation]:
        """The quotations whose content lies inside the ranges."""
        return [
            q
            for q in self.quotations
            if any(a <= q.content_start and q.content_end <= b + 1 for a, b in ranges)
            and self.quote_token(q) in self._by_token
        ]

    def widen_to_quotes(self, a: int, b: int) -> tuple[int, int]:
        """A range that starts or ends on a quotation takes in its marks and closing punctuation."""
        for q in self.quotations:
            if q.content_start <= b and a <= q.content_end:
                if q.open <= a <= q.content_start:
                    a = q.open
                if q.content_start <= b <= q.close:
                    b = q.close
        return a, b


def mask(text: str, blocks: list[Block], quotes: list[Quotation]) -> str:
    chars = list(text)
    for b in blocks:
        if not b.body:
            for i in range(b.start, b.end):
                if chars[i] != "\n":
                    chars[i] = " "
        elif (dateline := _DATELINE.match(b.text)) is not None:
            # "CLEVELAND (AP) — A spokesman said …": the dateline is no part of the sentence's subject.
            for i in range(b.start, b.start + dateline.end()):
                chars[i] = " "
        elif _title_case(b.text):
            # "Trump Praises Boyle: ‘Very Good Reporter’": in a title-case headline the tagger takes the
            # cue for a name; its lower-case form (same length) reads as the verb it is.
            for m in _WORD.finditer(b.text):
                if is_cue_form(m.group(0).lower()):
                    chars[b.start + m.start() : b.start + m.end()] = m.group(0).lower()
    for q in quotes:
        if text[q.open : q.open + 2] == "''":
            chars[q.open : q.open + 2] = [" ", "“"]  # the doubled apostrophe as the mark the tagger knows
        if q.balanced and text[q.close - 2 : q.close] == "''":
            chars[q.close - 2 : q.close] = ["”", " "]
        # A sentence end inside the quotation stays visible: it ends the journalist's sentence too.
        end = q.content_end
        while end > q.content_start + 1 and chars[end - 1] in ".!?…":
            end -= 1
        for i in range(q.content_start, end):
            chars[i] = MASK_CHAR
        if q.open > 0 and not text[q.open - 1].isspace() and end - q.content_start >= 3:
            # 'Ryan said,“Look, …”': glued to the word before, the mark and the placeholder would be
            # one token with it ('said,“qqq'), and the cue would be lost in it.
            chars[q.content_start] = " "
    return "".join(chars)


_WORD = re.compile(r"[A-Za-z]+")
_DATELINE = re.compile(
    r"""^(?:[A-Z][A-Z.'’\ ]{2,30}         # the place, in capitals: WASHINGTON, NEW YORK, ST. LOUIS
        |[A-Z][a-z]+(?:\ [A-Z][a-z]+)?(?=\s*\([A-Z]{2,8}\)))  # or as a name before an agency: Washington (AFP)
        (?:(?:,\s*[A-Z][A-Za-z.]{1,15})?   # its state or country: , D.C. / , Calif.
        (?:,?\s*[A-Z][a-z]{2,8}\.?\ \d{1,2})?  # the date: , Aug. 23
        (?:\s*\([A-Za-z\ .]{1,20}\))?      # the agency: (AP), (Reuters)
        \s*[—–-]{1,2}                      # then a dash,
        |,\s*[A-Z][A-Za-z.]{1,15}:)        # or a colon after the country: 'DAMASCUS, Syria:' ('TRUMP:' quotes)
        \s+(?=[A-Z“"])""",
    re.VERBOSE,
)


def _title_case(line: str) -> bool:
    """Most words capitalised, as headlines are ("Clinton Plan for Taxes Is Expansive but Complex")."""
    words = [w for w in _WORD.findall(line) if len(w) > 3]
    return len(words) >= 3 and sum(w[0].isupper() for w in words) >= 0.8 * len(words)


def parse_article(article: Article, nlp: object, prose: bool = False) -> ParsedArticle:
    """`prose`: every line is read (a text sent for checking has no bylines, captions or title)."""
    text = article.text
    blocks = split_blocks(text, article.title)
    if prose:
        blocks = [Block(b.start, b.end, b.text, True) for b in blocks]
    quotes = find_quotations(text, blocks)
    doc: Doc = nlp(mask(text, blocks, quotes))  # type: ignore[operator]
    body = [b for b in blocks if b.body]
    by_token: dict[int, Quotation] = {}
    token_of: dict[int, int] = {}
    for q in quotes:
        span = doc.char_span(q.content_start, q.content_end, alignment_mode="expand")
        if span is not None and len(span):
            by_token.setdefault(span[0].i, q)
            token_of[q.open] = span[0].i
    return ParsedArticle(
        article,
        body,
        quotes,
        doc,
        by_token,
        token_of,
        [t.idx for t in doc],
        [b.start for b in body],
    )
