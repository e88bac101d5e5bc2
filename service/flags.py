"""Meaning checks between a canonical wording and a rendering of it: what similarity cannot see.

A bi-encoder scores "We do not want Russia to leave" against "We want Russia to leave" at 0.93, so a
high cosine says nothing about faithfulness. These checks compare the two texts word by word and
report, with the words involved, the changes that alter what was said:

- ``negation``: a negation (not, no, never, n't, without, …) added or removed;
- ``number``: a number changed or added (digits and number words compared by value);
- ``entity``: a named entity or nationality swapped for another ("Russia" → "Ukraine"); countries,
  their demonyms and capitals count as one ("Russian", "Moscow", "Russia");
- ``insertion`` / ``deletion``: content words added to or dropped from a rendering that otherwise
  follows the original's wording.

Paraphrase rewords by nature, so the word-level checks only apply where the rendering follows the
original closely ("quote-like": most of its words appear, in order, in the original). Dropping the
beginning or the end of the original is quoting a part of it, not a deletion; adding words at either
end of a rendering is an insertion.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any

from spacy.lang.en.stop_words import STOP_WORDS

from .records import Flag, FlagType

NEGATIONS = frozenset(
    {"not", "no", "never", "none", "nor", "neither", "nobody", "nothing", "nowhere", "without", "cannot"}
    # Contractions typed without the apostrophe (copy pasted through systems that drop it).
    | {"dont", "doesnt", "didnt", "isnt", "arent", "wasnt", "werent", "havent", "hasnt", "hadnt", "wont"}
    | {"wouldnt", "cant", "couldnt", "shouldnt", "mustnt", "aint"}
)
# A rendering is quote-like when this share of its words appears, in order, in the original.
QUOTE_LIKE = 0.6
# A negation this many words before the part a rendering quotes still governs that part:
# "We do not want Russia to leave" quoted as "want Russia to leave".
NEGATION_REACH = 3

_UNITS = {
    "zero": 0,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
    "dozen": 12,
}  # "one" is left out: "one of the…" is rarely a count, and flagging it would be noise
_SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
_DIGITS = re.compile(r"^\d+(?:[.,]\d+)*$")

# Countries, demonyms and capitals that name the same state: a nationality swap is a change of
# country, "Moscow" for "Russia" is not. Kept small and explicit; extend with the corpus.
_PLACES = {
    "russia": ("russian", "russians", "moscow", "kremlin"),
    "syria": ("syrian", "syrians", "damascus"),
    "ukraine": ("ukrainian", "ukrainians", "kyiv", "kiev"),
    "turkey": ("turkish", "turks", "ankara", "türkiye"),
    "iran": ("iranian", "iranians", "tehran"),
    "israel": ("israeli", "israelis", "jerusalem"),
    "america": ("american", "americans", "us", "usa", "washington"),
    "china": ("chinese", "beijing"),
    "france": ("french", "paris"),
    "germany": ("german", "germans", "berlin"),
    "britain": ("british", "uk", "london"),
    "italy": ("italian", "italians", "rome"),
    "saudi": ("saudis", "riyadh"),
    "lebanon": ("lebanese", "beirut"),
    "iraq": ("iraqi", "iraqis", "baghdad"),
    "egypt": ("egyptian", "egyptians", "cairo"),
    "jordan": ("jordanian", "amman"),
    "qatar": ("qatari", "doha"),
    "europe": ("european", "europeans", "brussels"),
    "arab": ("arabs", "arabic"),
}
PLACE_KEYS = {alias: key for key, aliases in _PLACES.items() for alias in (key, *aliases)}
_ENTITY_LABELS = {"PERSON", "NORP", "GPE", "ORG", "LOC", "FAC"}
_NAME_PARTICLES = {"al", "el", "bin", "ibn", "abu", "de", "van", "von"}
# Capitalised words that are not names: titles and the first words of quoted sentences.
# Days and months are dates, not names.
_NOT_NAMES = {
    "mr",
    "mrs",
    "ms",
    "dr",
    "president",
    "minister",
    "prime",
    "foreign",
    "deputy",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
}


@dataclass(frozen=True, slots=True)
class _Words:
    cased: tuple[str, ...]
    lower: tuple[str, ...]


def tokens(text: str) -> _Words:
    """Words as `canon.normalise_text` splits them (hyphens and punctuation separate), case kept;
    except that a number keeps its separators ("1,500" is one word, not two)."""
    text = unicodedata.normalize("NFKC", text)
    text = re.sub(r"[’ʼ‘`]", "'", text)
    words = [w.strip("'") for w in re.findall(r"\d+(?:[.,]\d+)*|[\w']+", text)]
    words = [w for w in words if w]
    return _Words(tuple(words), tuple(w.lower() for w in words))


def is_negation(word: str) -> bool:
    return word in NEGATIONS or word.endswith("n't")


def _digits_value(word: str) -> float | str:
    try:
        return float(word.replace(",", ""))
    except ValueError:
        return word  # a version or a date ("2.6.0", "1.5.2003"): compared as written


def _numbers(words: _Words) -> list[tuple[str, float | str]]:
    """(as written, value) for each number: digits, and runs of number words ("twenty five" = 25)."""
    out: list[tuple[str, float | str]] = []
    run: list[str] = []
    total = current = 0.0

    def close() -> None:
        nonlocal total, current
        if run:
            out.append((" ".join(run), total + current))
        run.clear()
        total = current = 0.0

    for cased, low in zip(words.cased, words.lower, strict=True):
        if low in _UNITS:
            current += _UNITS[low]
            run.append(cased)
        elif low in _SCALES and run:
            current = max(current, 1.0) * _SCALES[low]
            if _SCALES[low] >= 1_000:
                total, current = total + current, 0.0
            run.append(cased)
        else:
            close()
            if _DIGITS.match(low):
                out.append((cased, _digits_value(low)))
    close()
    return out


@functools.lru_cache(maxsize=4096)
def _spacy_entity_words(text: str, nlp: Any) -> frozenset[str]:
    """Lower-cased words inside spaCy's named entities (cached: canonical wordings recur).

    Only the recogniser runs: it has its own token vectors, so the tagger, the parser and the rest
    would change nothing but the time (9.4 → 3.7 ms a sentence; on 3,163 PolNeAR and corpus
    sentences the entities differed in 2 title-case headlines, where no parser's sentence end cut
    them short)."""
    doc = nlp(text, disable=[name for name in nlp.pipe_names if name != "ner"])
    return frozenset(w.lower() for ent in doc.ents if ent.label_ in _ENTITY_LABELS for w in tokens(ent.text).lower)


def _entities(text: str, words: _Words, nlp: Any | None) -> dict[str, str]:
    """Entity key → the word as written. Keys merge a country with its demonyms and capital."""
    from_nlp: frozenset[str] | None = None  # asked for only when a word needs it: most texts never do
    out: dict[str, str] = {}
    for i, (cased, low) in enumerate(zip(words.cased, words.lower, strict=True)):
        bare = low.removesuffix("'s")
        if bare in PLACE_KEYS:
            out.setdefault(PLACE_KEYS[bare], cased)
            continue
        if len(bare) < 2 or bare in STOP_WORDS or bare in _NAME_PARTICLES or bare in _NOT_NAMES:
            continue
        if not cased[:1].isupper():
            continue
        # A capital at the start of the text is only a name when the recogniser says so.
        if i > 0 and not cased.isupper():
            out.setdefault(bare, cased)
            continue
        if from_nlp is None:
            from_nlp = _spacy_entity_words(text, nlp) if nlp is not None else frozenset()
        if bare in from_nlp:
            out.setdefault(bare, cased)
    return out


def _in_order_share(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[float, SequenceMatcher[str]]:
    matcher = SequenceMatcher(None, a, b, autojunk=False)
    matched = sum(block.size for block in matcher.get_matching_blocks())
    return (matched / len(b) if b else 0.0), matcher


def _significant(word: str) -> bool:
    return (
        len(word) > 1
        and word not in STOP_WORDS
        and not is_negation(word)
        and word not in _UNITS
        and word not in _SCALES
        and not _DIGITS.match(word)
    )


def compare_meaning(original: str, rendering: str, nlp: Any | None = None) -> tuple[Flag, ...]:
    """The changes of meaning from `original` to `rendering`; empty when none were found.

    `nlp` (a spaCy pipeline) adds its named entities to the capitalised-word heuristic; without it
    the check still catches countries, demonyms and capitalised names inside a sentence.
    """
    a, b = tokens(original), tokens(rendering)
    if not a.lower or not b.lower:
        return ()
    share, matcher = _in_order_share(a.lower, b.lower)
    quote_like = share >= QUOTE_LIKE
    blocks = [blk for blk in matcher.get_matching_blocks() if blk.size]
    flags: list[Flag] = []

    # Negation: compare the negations of the part of the original the rendering follows (plus the
    # few words before it) when quote-like; of the whole texts otherwise.
    if quote_like and blocks:
        lo = max(0, blocks[0].a - NEGATION_REACH)
        hi = blocks[-1].a + blocks[-1].size
        region = a.lower[lo:hi]
    else:
        region = a.lower
    neg_a = Counter(w for w in region if is_negation(w))
    neg_b = Counter(w for w in b.lower if is_negation(w))
    if sum(neg_a.values()) != sum(neg_b.values()):
        removed = tuple((neg_a - neg_b).elements())
        added = tuple((neg_b - neg_a).elements())
        what = "adds a negation" if sum(neg_b.values()) > sum(neg_a.values()) else "drops a negation"
        shown = ", ".join(f"'{w}'" for w in (added or removed))
        flags.append(Flag(FlagType.NEGATION, f"the rendering {what} ({shown})", removed, added))

    # Numbers: compared by value, so "three" and "3" agree.
    num_a, num_b = _numbers(a), _numbers(b)
    values_a, values_b = Counter(v for _, v in num_a), Counter(v for _, v in num_b)
    extra_b = values_b - values_a
    missing_a = values_a - values_b
    if extra_b or (missing_a and quote_like and num_b):
        removed = tuple(w for w, v in num_a if v in missing_a)
        added = tuple(w for w, v in num_b if v in extra_b)
        detail = (
            f"number changed: {', '.join(removed)} → {', '.join(added)}"
            if removed and added
            else f"number added: {', '.join(added)}"
            if added
            else f"number dropped: {', '.join(removed)}"
        )
        flags.append(Flag(FlagType.NUMBER, detail, removed, added))

    # Entities: a swap is one entity gone and another come; only adding or dropping one is
    # ordinary paraphrase ("we" → "Moscow") or partial quoting.
    ent_a, ent_b = _entities(original, a, nlp), _entities(rendering, b, nlp)
    gone = [ent_a[k] for k in ent_a if k not in ent_b]
    come = [ent_b[k] for k in ent_b if k not in ent_a]
    if gone and come:
        flags.append(
            Flag(FlagType.ENTITY, f"{', '.join(gone)} replaced by {', '.join(come)}", tuple(gone), tuple(come))
        )

    # Insertions and deletions of content words, where the rendering follows the wording.
    if quote_like:
        inserted: list[str] = []
        deleted: list[str] = []
        entity_words = {w.lower() for w in (*gone, *come)}
        opcodes = matcher.get_opcodes()
        for n, (tag, i1, i2, j1, j2) in enumerate(opcodes):
            edge = n == 0 or n == len(opcodes) - 1
            if tag == "insert":
                inserted += [w for w, lw in zip(b.cased[j1:j2], b.lower[j1:j2], strict=True) if _significant(lw)]
            elif tag == "delete" and not edge:  # dropping the original's start or end is a partial quote
                deleted += [w for w, lw in zip(a.cased[i1:i2], a.lower[i1:i2], strict=True) if _significant(lw)]
        inserted = [w for w in inserted if w.lower() not in entity_words]
        deleted = [w for w in deleted if w.lower() not in entity_words]
        if inserted:
            flags.append(Flag(FlagType.INSERTION, f"words added: {' '.join(inserted)}", (), tuple(inserted)))
        if deleted:
            flags.append(Flag(FlagType.DELETION, f"words left out: {' '.join(deleted)}", tuple(deleted), ()))
    return tuple(flags)
