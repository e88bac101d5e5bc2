"""The words that attribute: verbs and nouns by what they say the source did.

Only speech makes a quote. The other classes are attributions a reader must not take for something
said: beliefs ("X believes"), intentions ("X wants"), perceptions ("X saw") and evidence ("polls
show"). A verb whose class depends on its subject ("suggest", "reveal", "find") is speech with a
person or an organisation as subject and evidence with a document, a poll or data.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from ..records import CueClass

SPEECH_VERBS = frozenset(
    """
    say tell add ask write tweet retweet post blog text email message report announce note call describe
    argue explain claim state declare insist warn urge suggest continue respond reply answer acknowledge
    admit concede deny confirm reveal disclose mention remark comment observe point recall recount predict
    promise pledge vow assure accuse blame criticize criticise attack blast slam praise hail tout boast brag
    complain joke quip muse conclude emphasize emphasise stress highlight underscore reiterate repeat echo
    testify speak talk discuss cite quote inform question challenge charge allege assert contend
    maintain proclaim counter retort shout yell scream whisper mutter exclaim cry decry denounce condemn
    dismiss reject mock ridicule lament plead beg demand request propose recommend advise caution threaten
    interject scoff sneer grumble gush marvel characterize characterise label brand dub term refer portray
    thank apologize apologise congratulate invite affirm reaffirm frame voice express welcome signal
    predict rail lash tease preview publish issue release read caution surmise chant
    react relate elaborate reason recount counter
    clarify correct elaborate estimate vouch concur agree disagree object protest rebut refute retort
    summarize summarise sum declare deride pan lambast berate scold chide rebuke reprimand applaud commend
    laud celebrate defend justify insist reassure promise threaten demand order instruct direct
    """.split()
)
BELIEF_VERBS = frozenset(
    """
    believe think feel consider doubt suspect assume know guess figure reckon regard view deem fear worry
    expect trust understand realize realise recognize recognise imagine suppose presume bet wonder
    question see
    """.split()
)
INTENTION_VERBS = frozenset(
    """
    want plan hope intend seek aim wish try decide prefer desire favor favour support oppose endorse back
    refuse decline vote choose mean threaten strive attempt look
    """.split()
)
PERCEPTION_VERBS = frozenset("see hear notice learn watch witness discover sense spot".split())
EVIDENCE_VERBS = frozenset(
    """
    show find indicate demonstrate prove reveal suggest project appear seem estimate mean imply
    """.split()
)
ALL_CUE_VERBS = SPEECH_VERBS | BELIEF_VERBS | INTENTION_VERBS | PERCEPTION_VERBS | EVIDENCE_VERBS
# Nouns that carry speech as cues: "in a statement", "in an interview", "his tweet".
SPEECH_NOUNS = frozenset(
    """
    statement interview tweet post remark remarks speech letter email message comment comments words
    op-ed column quote readout release announcement press conference testimony address
    """.split()
)
# Subjects whose "suggest"/"show"/"find" is evidence, not speech.
EVIDENCE_SUBJECTS = frozenset(
    """
    poll polls survey surveys data study studies report reports research analysis analyses record records
    figures numbers results evidence documents document filings filing statistics estimates review audit
    investigation model models forecast forecasts projections numbers count tally
    """.split()
)

_IRREGULAR = {
    "said": "say",
    "says": "say",
    "told": "tell",
    "wrote": "write",
    "written": "write",
    "spoke": "speak",
    "spoken": "speak",
    "thought": "think",
    "felt": "feel",
    "knew": "know",
    "known": "know",
    "saw": "see",
    "seen": "see",
    "heard": "hear",
    "found": "find",
    "sought": "seek",
    "meant": "mean",
    "chose": "choose",
    "chosen": "choose",
    "shown": "show",
    "read": "read",
    "learnt": "learn",
    "bet": "bet",
    "hit": "hit",
    "lit": "light",
    "cried": "cry",
    "replied": "reply",
    "denied": "deny",
    "tried": "try",
    "implied": "imply",
}


def _forms(lemma: str) -> set[str]:
    """Regular inflections of an English verb: -s/-es, -ed/-d, -ing, with the usual spelling rules."""
    out = {lemma}
    if lemma.endswith("y") and lemma[-2:-1] not in "aeiou":
        out |= {lemma[:-1] + "ies", lemma[:-1] + "ied", lemma + "ing"}
    elif lemma.endswith("e"):
        out |= {lemma + "s", lemma + "d", lemma[:-1] + "ing"}
    elif lemma.endswith(("s", "sh", "ch", "x", "z", "o")):
        out |= {lemma + "es", lemma + "ed", lemma + "ing"}
    else:
        out |= {lemma + "s", lemma + "ed", lemma + "ing"}
        # A short verb ending consonant-vowel-consonant doubles its last letter: "slam" → "slammed".
        if len(lemma) <= 4 and lemma[-1] not in "aeiouwxy" and lemma[-2] in "aeiou" and lemma[-3] not in "aeiou":
            out |= {lemma + lemma[-1] + "ed", lemma + lemma[-1] + "ing"}
    return out


_CLASSES: tuple[tuple[CueClass, frozenset[str]], ...] = (
    (CueClass.SPEECH, SPEECH_VERBS),
    (CueClass.EVIDENCE, EVIDENCE_VERBS - SPEECH_VERBS),
    (CueClass.PERCEPTION, PERCEPTION_VERBS - SPEECH_VERBS - EVIDENCE_VERBS),
    (CueClass.BELIEF, BELIEF_VERBS - SPEECH_VERBS - PERCEPTION_VERBS),
    (CueClass.INTENTION, INTENTION_VERBS - SPEECH_VERBS - BELIEF_VERBS),
)


@functools.cache
def _lemma_of_form() -> dict[str, str]:
    table: dict[str, str] = {}
    for _, lemmas in _CLASSES:
        for lemma in lemmas:
            for form in _forms(lemma):
                table.setdefault(form, lemma)
    table.update(_IRREGULAR)
    return table


# Phrasal verbs that speak only with their particle: "shot back", "fired back", "lashed out".
SPEECH_PHRASALS = {
    "shoot": {"back"},
    "fire": {"back"},
    "hit": {"back", "out"},
    "push": {"back"},
    "strike": {"back"},
    "lash": {"out"},
    "speak": {"out", "up"},
    "weigh": {"in"},
    "chime": {"in"},
    "point": {"out"},
    "spell": {"out"},
    "lay": {"out"},
    "sound": {"off"},
    "open": {"up"},
}


def class_of_lemma(lemma: str) -> CueClass | None:
    for cls, lemmas in _CLASSES:
        if lemma in lemmas:
            return cls
    return None


def cue_class_of_words(words: Iterable[str]) -> CueClass | None:
    """The class of a cue written as words (lower case), for cues read without a parse: speech when
    any word speaks ("told reporters", "said in a statement", "according to"), else the class of the
    first verb that has one."""
    words = list(words)
    if "according" in words or any(w in SPEECH_NOUNS for w in words):
        return CueClass.SPEECH
    table = _lemma_of_form()
    classes = [class_of_lemma(table[w]) for w in words if w in table]
    if CueClass.SPEECH in classes:
        return CueClass.SPEECH
    return next((c for c in classes if c is not None), None)


def is_speech_form(word: str) -> bool:
    """A written form of a speech verb ("said", "asks", "tweeted"), read without a parse."""
    lemma = _lemma_of_form().get(word)
    return lemma is not None and lemma in SPEECH_VERBS


def is_cue_form(word: str) -> bool:
    """A written form of any cue verb ("praises", "slams", "wants"), read without a parse."""
    return word in _lemma_of_form() and word not in _NOT_VERBS


# Forms that are far more often something else in a headline: "Plan", "Back", "Support", "View".
_NOT_VERBS = frozenset("plan plans back support view views call calls post report record".split())
