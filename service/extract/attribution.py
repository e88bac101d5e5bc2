"""Attributions of one article: who (source), the words that attribute (cue), and what (content).

The parse runs once, on a *masked* copy of the article (see `parse.py`): every quotation's content is
one placeholder word, so spaCy neither splits sentences inside quotations nor parses the quoted
words as the journalist's, and a quotation becomes one token whose place in the tree leads to its
cue (`"…," Peskov told reporters` → the placeholder hangs under "told", whose subject is the source).

Each sentence is read for the patterns newsrooms print:
- a cue verb (any person, number or tense) with a clause, an object or a quotation as its content:
  "X said (that) …", "…, X said", "X told reporters …", "…, saying …", "X wrote/tweeted/posted …",
  "X believes/wants/hopes …", "polls show …";
- "according to X" before, inside or after the content;
- a colon after a source: headlines ("Trump: '…'") and "X said:" before a quote in the next paragraph;
- a quotation with no cue of its own continues the attribution before it (`"…," he said. "…"`, and
  quotes that run over several paragraphs);
- a quotation signed with a dash (`“…” ― Pamela Padilla`, `Bernie Sanders - "…"`); any verb set off
  after a quotation (`"…," Hollande retaliated`) or before a colon and one (`Trump went further: “…”`);
  the owner of a claim or a pledge (`Trump's claim that …`); a sentence about a statement
  (`Howard continued his remarks.`) before a quotation;
- failing all of these, a quotation of a few words under a verb with a named subject is the
  subject's (`Lewandowski ripped Comey for acting as “the judge and the jury”`).
Content around a partial quote is the whole clause the outlet attributes; the quoted words are kept
as the mention's wording (`spans`), since they alone are verbatim.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from spacy.tokens import Span as SpacySpan
from spacy.tokens import Token

from ..records import Article, CueClass, Extraction, MentionKind, QuoteMention, Span
from ..speakers import SpeakerRegistry
from .cues import ALL_CUE_VERBS, EVIDENCE_SUBJECTS, SPEECH_NOUNS, SPEECH_PHRASALS, class_of_lemma
from .parse import ParsedArticle, parse_article
from .quotes import Quotation
from .sources import Discourse, Source

# Verbs whose subject is the media: "report"/"cite" with an outlet as subject hand the statement to
# whoever the complement names.
MEDIA_VERBS = {"report", "cite"}
# Complements that carry the content.
_CLAUSE_DEPS = {"ccomp", "parataxis"}
_OBJECT_DEPS = {"dobj", "attr"}
# Speech verbs whose object is what was said ("denied the report", "praised her plan").
_OBJECT_CUES = frozenset(
    """
    describe emphasize emphasise stress highlight underscore voice express reaffirm affirm deny dismiss urge call
    demand welcome reject condemn frame propose pledge reiterate acknowledge praise criticize criticise accuse
    signal hail
    """.split()
)
# Speech verbs whose object is what the speech was about, not what it said: "attacked Clinton",
# "announced his candidacy", "requested Assad's extradition". Attributions, never quotes.
_TOPIC_CUES = frozenset(
    """
    announce tout cite blame attack blast slam mock decry denounce defend question predict promise vow reveal
    confirm admit concede claim challenge applaud laud commend rebuke repeat echo suggest request recommend label
    brand dub term characterize characterise portray issue release unveil discuss mention thank congratulate
    """.split()
)
_TOPIC_PREPS = {"about", "of", "on", "over"}
# Verbs that judge someone for something: the content is both ("accused Cruz of weakening the border patrol").
_JUDGEMENT_CUES = frozenset(
    """
    accuse blame criticize criticise praise thank credit fault slam blast attack hail applaud laud commend rebuke
    congratulate condemn mock chide scold berate lambaste knock ding
    """.split()
)
# Verbs whose content can be a gerund: "reported raising $9 million", "denied knowing him".
_GERUND_CUES = frozenset(
    """
    report recall admit deny mention acknowledge suggest propose recommend discuss describe remember regret
    consider favor favour support oppose endorse claim
    """.split()
)
_ANY_CONTENT_PREPS = {"about", "of", "for", "on", "against", "over"}
# Verbs whose content is an infinitive ("wants to run", "promised to cut", "urged them to vote").
_XCOMP_CUES = frozenset(
    """
    want plan hope intend seek aim wish try decide prefer refuse decline vote choose promise pledge vow
    threaten urge call ask agree offer demand expect push press encourage warn tell order appear seem
    """.split()
)
# Prepositions that carry the content after a cue: "called for …", "warned of …", "spoke about …".
_CONTENT_PREPS = {
    "call": {"for", "on"},
    "ask": {"for", "about"},
    "push": {"for"},
    "press": {"for"},
    "warn": {"of", "about", "against"},
    "speak": {"of", "about"},
    "talk": {"about", "of"},
    "write": {"about", "of"},
    "complain": {"about", "of"},
    "argue": {"for", "against"},
    "advocate": {"for"},
    "boast": {"about", "of"},
    "brag": {"about"},
    "joke": {"about"},
    "rail": {"against"},
    "lash": {"out"},
    "comment": {"on"},
    "testify": {"about"},
    "hope": {"for"},
    "worry": {"about"},
}
_MIN_CONTENT_TOKENS = 2


@dataclass(slots=True)
class Attribution:
    """One attribution as found in the parse, before its source is resolved to a speaker."""

    cue: list[Token]
    cue_text: str
    cue_class: CueClass
    content: list[tuple[int, int]]  # character ranges
    quotations: list[Quotation]  # the quotations inside the content
    source: Token | None  # the head of the source phrase
    confidence: float
    direct: bool = False  # the content is the quotations themselves, set off from the cue
    topic: bool = False  # the content is what the speech was about ("attacked Clinton")
    headline: bool = False
    via_statement: bool = False
    media_source: bool = False
    open_colon: bool = False  # "X said:" with its content still to come
    sort_key: int = 0


def extract_article(article: Article, registry: SpeakerRegistry, nlp: object) -> Extraction:
    return read_attributions(parse_article(article, nlp), registry)


def read_attributions(parsed: ParsedArticle, registry: SpeakerRegistry) -> Extraction:
    """The attributions of a parsed article, front to back, with their sources resolved."""
    article = parsed.article
    discourse = Discourse(parsed, registry)
    discourse.learn_names()
    mentions: list[QuoteMention] = []
    last: tuple[Attribution, Source, int] | None = None  # the latest speech, for quotes that go on
    pending_colon: Attribution | None = None  # "X said:" with its quote in the next paragraph
    for sent in parsed.doc.sents:
        block = parsed.block_at(sent.start_char)
        if block is None:
            continue
        found = _sentence_attributions(parsed, sent)
        claimed = {q.open for a in found for q in a.quotations}
        loose = [q for q in parsed.quotations_in(sent) if q.open not in claimed]
        if loose and not found:
            signed = _byline_attribution(parsed, loose)
            if signed is not None:
                found, loose = [signed], []
        if pending_colon is not None and loose and not found:
            pending_colon.quotations = loose
            pending_colon.content = [(q.content_start, q.content_end) for q in loose]
            pending_colon.direct = True
            pending_colon.open_colon = False
            found, loose = [pending_colon], []
        pending_colon = None
        uncued = not found  # no attribution in the sentence: its quotations may be its subject's words
        for q in loose:
            if last is not None and _continues(parsed, last[0], q):
                attribution, source, index = last
                attribution.quotations.append(q)
                attribution.content.append(parsed.widen_to_quotes(q.content_start, q.content_end))
                mentions[index] = mention_for(parsed, attribution, source)
            elif uncued:
                quoted = _subjects_words(parsed, q)
                if quoted is not None:
                    found.append(quoted)
        for attribution in sorted(found, key=lambda a: a.sort_key):
            if attribution.open_colon:
                pending_colon = attribution
                continue
            attribution.headline = block.headline
            source = discourse.resolve(attribution)
            mention = mention_for(parsed, attribution, source)
            discourse.spoke(attribution, source, mention)
            mentions.append(mention)
            if attribution.cue_class is CueClass.SPEECH:
                last = (attribution, source, len(mentions) - 1)
        discourse.after_sentence(sent, ALL_CUE_VERBS)
    return Extraction(article, tuple(mentions), discourse.touched_speakers())


# -- finding attributions in one sentence ----------------------------------------------------------


def _sentence_attributions(parsed: ParsedArticle, sent: SpacySpan) -> list[Attribution]:
    found: list[Attribution] = []
    taken: set[int] = set()  # token indices already inside some content
    quote_cues: dict[int, list[Quotation]] = {}
    manner: set[int] = set()  # verbs that speak by where they stand: `"…," Hollande retaliated.`
    characterised: dict[int, Attribution | None] = {}  # `Reid pounded Trump as a “con artist”`
    # 1. quotations, each under the nearest cue above it
    for tok in sent:
        q = parsed.quote_at(tok.i)
        if q is None:
            continue
        cue = _cue_above(parsed, tok)
        if cue is None:
            cue = _manner_verb_after(parsed, tok)
            if cue is not None:
                manner.add(cue.i)
        if cue is None:
            verb = _characterising_verb(parsed, tok)
            if verb is not None and verb.i not in characterised:
                characterised[verb.i] = _characterisation(parsed, verb, q)
        if cue is not None:
            quote_cues.setdefault(cue.i, []).append(q)
    # 2. every cue verb with its content
    for tok in sent:
        if not _is_cue_verb(tok) and tok.i not in manner:
            continue
        attribution = _verb_attribution(parsed, tok, quote_cues.get(tok.i, []), tok.i in manner)
        if attribution is not None:
            found.append(attribution)
    for tok in sent:  # "Trump's claim that …", "her pledge to …"
        if tok.pos_ == "NOUN" and tok.lemma_.lower() in _SAYING_NOUNS:
            attribution = _noun_attribution(parsed, tok)
            if attribution is not None:
                found.append(attribution)
    found += [a for a in characterised.values() if a is not None and all(a.cue[0].i != f.cue[0].i for f in found)]
    found = _unnest(parsed, found)
    for attribution in found:
        taken |= _content_tokens(parsed, attribution)
    # 3. "according to X", unless a speaker inside already speaks ("X underscored …, according to the
    # statement": the innermost source is the speaker)
    if any(a.cue_class is CueClass.SPEECH for a in found):
        return found
    for tok in sent:
        if tok.lower_ == "according" and tok.i + 1 < len(parsed.doc) and parsed.doc[tok.i + 1].lower_ == "to":
            attribution = _according_to(parsed, sent, tok, taken)
            if attribution is not None:
                taken |= _content_tokens(parsed, attribution)
                found.append(attribution)
    # 4. a colon after a source: "Trump: '…'" (headlines), "Cruz continued:" handled as a cue verb
    if not found:
        attribution = _colon_attribution(parsed, sent) or _colon_frame(parsed, sent) or _statement_frame(parsed, sent)
        if attribution is not None:
            found.append(attribution)
    return found


def _unnest(parsed: ParsedArticle, found: list[Attribution]) -> list[Attribution]:
    """Every token belongs to one attribution.

    - A statement that is the whole content of another ("the presidency said Sharaa emphasized …")
      belongs to the innermost source; the outer one only reports it.
    - A statement deeper inside another's content ("… in a finish that he said defied
      expectations") is cut out of the outer content, which keeps what remains.
    - A belief or intention inside speech ("the Kremlin said Putin wished …") stays inside it.
    """
    speech_tokens: set[int] = set()
    for a in found:
        if a.cue_class is CueClass.SPEECH:
            speech_tokens |= _content_tokens(parsed, a)
    dropped: set[int] = set()  # ids of attributions that lose to another
    cut: dict[int, set[int]] = {}  # id of an outer attribution → tokens to cut from its content
    for outer in found:
        request = outer.cue[0].lemma_.lower() in _REQUEST_VERBS
        if request:
            for inner in found:
                if inner.cue[0].dep_ == "xcomp" and inner.cue[0].head.i == outer.cue[0].i:
                    dropped.add(id(inner))
        if not request and any(
            inner.cue[0].dep_ == "xcomp"
            and inner.cue[0].head.i == outer.cue[0].i
            # "pledged to oppose X": an intention inside speech stays the speech's (dropped below)
            and (inner.cue_class is CueClass.SPEECH or outer.cue_class is not CueClass.SPEECH)
            and (not outer.direct or inner.cue[0].i in _content_tokens(parsed, outer))
            for inner in found
        ):
            # "seemed to blame X", "sought to clarify X": the inner verb attributes (but in
            # 'said, “…,” promising …' the quotation stays the saying's)
            dropped.add(id(outer))
            continue
        if outer.cue_class is not CueClass.SPEECH:
            if outer.cue[0].i in speech_tokens:
                dropped.add(id(outer))  # a belief inside speech: the speech holds it
            continue
        tokens = _content_tokens(parsed, outer)
        for inner in found:
            if inner is outer or inner.cue_class is not CueClass.SPEECH or inner.cue[0].i not in tokens:
                continue
            if inner.topic:
                continue  # "… must address past mistakes": what a clause is about is no statement inside it
            if _speaker_goes_on(outer, inner, tokens):
                # "X said A and urged B", "X said A, adding B": the parser hangs the second saying
                # on A, but it is X's next statement, not part of A
                inner.source = outer.source
                extra = {t.i for t in inner.cue[0].subtree} | _content_tokens(parsed, inner)
                cut.setdefault(id(outer), set()).update(extra)
                continue
            through_statement = inner.cue[0].dep_ == "acl" and _statement_noun(inner.cue[0].head)
            if inner.source is None or (inner.source.head.i != inner.cue[0].i and not through_statement):
                continue  # "the first one to say …", "… and tell him …": the same source goes on
            if inner.cue[0].head.i == outer.cue[0].i:
                dropped.add(id(outer))  # the innermost source speaks; the outer one reports it
                continue
            extra = _content_tokens(parsed, inner) | {t.i for t in inner.cue} | {inner.source.i}
            if inner.source.dep_ != "relcl":
                extra |= {t.i for t in inner.source.subtree}
            cut.setdefault(id(outer), set()).update(extra)
    kept: list[Attribution] = []
    for a in found:
        if id(a) in dropped:
            continue
        if id(a) in cut and not _cut(parsed, a, cut[id(a)]):
            continue
        kept.append(a)
    return kept


def _speaker_goes_on(outer: Attribution, inner: Attribution, outer_tokens: set[int]) -> bool:
    """Is the inner saying the outer speaker's next one, hung by the parser on the outer content?

    It must have no subject of its own and hang, through no other cue and no relative clause, on
    the outer content: the innermost outer only, so a later or dropped outer never claims it. Then
    either a participle after a comma ("said …, adding …"), or a verb in the outer cue's tense
    joined to a clause whose subject cannot be the one who goes on: a pronoun, which is the speaker
    or says nothing of who spoke ("said he was winning and told donors …"), or a clause in another
    form ("said the plan would fail and suggested …"). "said the senator voted no and told
    reporters …" stays the senator's.
    """
    cue, head = inner.cue[0], inner.cue[0].head
    if outer.direct or outer.source is None or _has_subject(cue) or head.i not in outer_tokens:
        return False
    if head.i == outer.cue[0].i or cue.i < head.i:
        return False
    node = head
    while node.i != outer.cue[0].i:
        # a cue of its own on the way (belief or speech) has its own source; a relative clause
        # speaks of its antecedent
        if _is_cue_verb(node) or node.dep_ == "relcl" or node.head.i == node.i:
            return False
        node = node.head
    if cue.dep_ == "advcl":
        return cue.tag_ == "VBG" and cue.i > 0 and cue.doc[cue.i - 1].text == ","
    if cue.dep_ != "conj" or cue.tag_ != outer.cue[0].tag_ or cue.tag_ not in ("VBD", "VBZ", "VBP"):
        return False
    subjects = [c for c in head.children if c.dep_ in ("nsubj", "nsubjpass")]
    other_form = head.tag_ != cue.tag_ or any(c.dep_ == "aux" for c in head.children)
    return other_form or all(s.pos_ == "PRON" for s in subjects)


def _cut(parsed: ParsedArticle, outer: Attribution, inner_tokens: set[int]) -> bool:
    """Cuts tokens out of an attribution's content; False when too little is left to keep it."""
    doc = parsed.doc
    ranges = _ranges_of(parsed, [doc[i] for i in sorted(_content_tokens(parsed, outer) - inner_tokens)])
    if sum(len(parsed.text[a:b].split()) for a, b in ranges) < _MIN_CONTENT_TOKENS:
        return False
    outer.content = ranges
    outer.quotations = parsed.quotations_between(ranges)
    outer.direct = outer.direct and bool(outer.quotations)
    return True


def _is_cue_verb(tok: Token) -> bool:
    return _cue_class(tok) is not None


def _cue_class(tok: Token) -> CueClass | None:
    """The class of a verb as a cue: by its lemma, or by its particle ("shot back"), or "put it"."""
    if tok.pos_ not in ("VERB", "AUX") and not (tok.tag_ in ("VBD", "VBZ", "VBP", "VBG", "VBN") and tok.pos_ != "NOUN"):
        return None
    lemma = tok.lemma_.lower()
    if tok.pos_ == "AUX" and lemma not in ("say", "tell"):
        return None
    particles = SPEECH_PHRASALS.get(lemma)
    if particles and any(c.dep_ in ("prt", "advmod") and c.lower_ in particles for c in tok.children):
        return CueClass.SPEECH  # "back" in "shot back" is often parsed as an adverb
    if lemma == "put" and any(c.dep_ == "dobj" and c.lower_ == "it" for c in tok.children):
        return CueClass.SPEECH  # "as Cornyn put it: …"
    return class_of_lemma(lemma)


# Verbs that give their object a name: "called the plan “a disaster”", "labeled him a “traitor”".
_NAMING_CUES = frozenset("call label brand dub term".split())
# Requests: the infinitive is what was asked for, even when its verb is a cue of its own ("called on
# the White House to release the files", "asked the court to reject the claims").
_REQUEST_VERBS = frozenset("urge call ask tell order beg plead invite".split())


def _cue_above(parsed: ParsedArticle, quote_tok: Token) -> Token | None:
    """The speech cue of a quotation: the nearest cue verb above it in the tree, else one the parser
    hung under it (`"…," he said` parsed with "said" as the quotation's parataxis), else the verb
    right before it (`he said, "…"`) or right after it with only its subject between."""
    node = quote_tok
    for _ in range(8):
        if node.head.i == node.i:
            break
        node = node.head
        if parsed.quote_at(node.i) is not None:
            continue
        if _quote_cue(node, quote_tok):
            return node
    for child in quote_tok.children:
        if child.dep_ in ("parataxis", "advcl", "conj", "ccomp", "dep", "relcl") and _quote_cue(child, quote_tok):
            return child
    sent = quote_tok.sent
    i = quote_tok.i - 1
    while i >= sent.start and (parsed.doc[i].is_punct or parsed.doc[i].is_space):
        i -= 1
    if i >= sent.start and _quote_cue(parsed.doc[i], quote_tok):
        return parsed.doc[i]
    j = quote_tok.i + 1
    while j < sent.end and (parsed.doc[j].is_punct or parsed.doc[j].is_space):
        j += 1
    for k in range(j, min(j + 8, sent.end)):
        tok = parsed.doc[k]
        if _quote_cue(tok, quote_tok):
            return tok
        if (tok.is_punct and tok.text not in (",", "-", "–", "—")) or parsed.quote_at(k) is not None:
            break
    return None


# What may stand after a verb that ends a sentence: "back", "at the crowd", "on Twitter", "Tuesday".
_TRAILING_DEPS = {"prt", "advmod", "prep", "pobj", "det", "amod", "compound", "npadvmod", "poss", "nummod", "punct"}


def _manner_verb_after(parsed: ParsedArticle, quote_tok: Token) -> Token | None:
    """`"…," an angry Hollande retaliated.` / `"…," Oliver barked at the crowd.`: a quotation that
    opens its sentence, set off by a comma, '?' or '!', then a short subject and a finite verb that
    ends the sentence. In that place any verb says how the words were spoken, whether or not it is a
    speech verb ("retaliated", "barked", "riffed")."""
    doc = parsed.doc
    sent = quote_tok.sent
    q = parsed.quote_at(quote_tok.i)
    if q is None or any(not (t.is_punct or t.is_space) for t in doc[sent.start : quote_tok.i]):
        return None
    tail = parsed.text[q.content_end : q.close + 2].strip(" \"'“”‘’\n")
    if tail[:1] not in (",", "?", "!", "—", "–"):
        return None
    words = [t for t in doc[quote_tok.i + 1 : sent.end] if not (t.is_punct or t.is_space)]
    verbs = [t for t in words[:7] if t.tag_ in ("VBD", "VBZ", "VBP") and t.pos_ == "VERB"]
    if not verbs:
        return None
    verb = verbs[0]
    if _cue_class(verb) is not None or verb.lemma_.lower() in ("be", "have", "do"):
        return None
    subject = [t for t in words if t.i < verb.i]
    if subject:  # `"…," Oliver barked`: the words before the verb are its subject, and only that
        if not any(c.dep_ == "nsubj" and c.i < verb.i for c in verb.children) or len(subject) > 6:
            return None
        if any(t.pos_ in ("VERB", "AUX") for t in subject):
            return None
    elif not any(t.pos_ in ("PROPN", "PRON", "NOUN") and t.i > verb.i for t in words[1:4]):
        return None  # `"…," retorted Smith.`: inverted, the subject follows
    after = [t for t in words if t.i > verb.i]
    if subject and any(t.dep_ not in _TRAILING_DEPS for t in after):
        return None  # "…, he opened the door and left": the verb has a content of its own
    return verb


# Nouns for a saying whose owner is its source: "Trump's claim that …", "her pledge to …".
_SAYING_NOUNS = frozenset(
    """
    claim assertion allegation accusation charge suggestion contention insistence argument comment remark
    statement pledge promise vow warning threat prediction admission boast demand call
    """.split()
)


def _noun_attribution(parsed: ParsedArticle, noun: Token) -> Attribution | None:
    """`Donald Trump's claim that there have been “thousands of shootings”`, `her pledge to be
    "neutral"`: the owner of a saying noun is the source; the clause it carries is the content."""
    owner = next((c for c in noun.children if c.dep_ == "poss"), None)
    if owner is None or owner.pos_ not in ("PROPN", "NOUN", "PRON") or owner.lower_ in ("its", "their"):
        return None
    clause = next(
        (
            c
            for c in noun.children
            if c.i > noun.i
            and c.dep_ in ("acl", "ccomp", "relcl")
            and (c.pos_ in ("VERB", "AUX") or parsed.quote_at(c.i) is not None)
            and any(
                (g.dep_ == "mark" and g.lower_ == "that") or (g.dep_ == "aux" and g.lower_ == "to") for g in c.children
            )
        ),
        None,
    )
    if clause is None:
        return None
    ranges = _clause_ranges(parsed, [clause])
    if not ranges or sum(len(parsed.text[a:b].split()) for a, b in ranges) < _MIN_CONTENT_TOKENS:
        return None
    quotes = parsed.quotations_between(ranges)
    return Attribution([noun], noun.text, CueClass.SPEECH, ranges, quotes, owner, 0.75, sort_key=min(noun.i, owner.i))


def _characterising_verb(parsed: ParsedArticle, quote_tok: Token) -> Token | None:
    """`Reid has been pounding Trump as a “con artist”`, `Tribe likened the rules to "burning the
    Constitution"`: a quotation inside an "as"/"to"/"like" phrase that a verb with a subject and an
    object governs. The quoted words are the subject's name for the object."""
    node = quote_tok
    for _ in range(3):
        if node.dep_ == "pobj" and node.head.lower_ in ("as", "to", "like") and node.head.dep_ == "prep":
            verb = node.head.head
            if (
                verb.pos_ == "VERB"
                and _has_subject(verb)
                and any(c.dep_ == "dobj" and c.i < node.head.i for c in verb.children)
                and _cue_class(verb) in (None, CueClass.SPEECH)
            ):
                return verb
            return None
        if node.head.i == node.i or node.dep_ not in ("appos", "conj", "compound", "amod", "pobj"):
            return None
        node = node.head
    return None


def _characterisation(parsed: ParsedArticle, verb: Token, q: Quotation) -> Attribution | None:
    """The object and its "as …" phrase are the content: 'Trump as a “con artist”'."""
    source = _subject(parsed, verb)
    if source is None or source.lower_ in _NO_SOURCE or source.pos_ not in ("PROPN", "NOUN", "PRON"):
        return None
    at = parsed.quote_token(q)
    obj = next((c for c in verb.children if c.dep_ == "dobj"), None)
    prep = next((c for c in verb.children if c.dep_ == "prep" and c.left_edge.i <= at <= c.right_edge.i), None)
    if obj is None or prep is None or prep.i < obj.i:
        return None
    tokens = [t for t in parsed.doc[obj.left_edge.i : prep.right_edge.i + 1]]
    ranges = _ranges_of(parsed, tokens)
    if not ranges:
        return None
    quotes = parsed.quotations_between(ranges)
    return Attribution([verb], _cue_text(verb), CueClass.SPEECH, ranges, quotes, source, 0.7, sort_key=obj.i)


def _is_speech_cue(tok: Token) -> bool:
    return _cue_class(tok) is CueClass.SPEECH


# Verbs that speak only with a clause ("maintained that …"); "maintains contact" is no statement.
_CLAUSE_ONLY = frozenset("maintain hold issue release express relate reason direct".split())


def _quote_cue(verb: Token, quote_tok: Token) -> bool:
    if not _is_speech_cue(verb):
        return False
    return verb.lemma_.lower() not in _CLAUSE_ONLY or quote_tok.dep_ == "ccomp"


def _has_subject(tok: Token) -> bool:
    return any(c.dep_ in ("nsubj", "nsubjpass") for c in tok.children)


def _verb_attribution(
    parsed: ParsedArticle, cue: Token, quotes: list[Quotation], manner: bool = False
) -> Attribution | None:
    lemma = cue.lemma_.lower()
    cls = CueClass.SPEECH if manner else _cue_class(cue)
    if cls is None:
        return None
    source = _subject(parsed, cue)
    # "The mayor was asked what happened to the funds": a question put by someone the text does not name.
    asked = lemma == "ask" and any(c.dep_ == "nsubjpass" for c in cue.children)
    if (
        source is None
        and cue.dep_ not in ("advcl", "xcomp", "conj", "relcl", "acl", "pcomp")
        and not quotes
        and not asked
    ):
        return None
    if source is not None and source.lower_ in ("it", "there", "this", "that") and source.dep_ == "expl":
        return None
    if source is not None and lemma in _SPEECH_OR_EVIDENCE:
        cls = CueClass.EVIDENCE if _evidence_subject(source) else CueClass.SPEECH
    complement = _complement(parsed, cue, lemma, cls)
    if quotes:  # "released the following statement: “…”": the quotation is what the statement says
        # but "called the remarks “racially toxic”": the quotation names the object, which stays
        naming = lemma in _NAMING_CUES and any(h.dep_ == "oprd" for h in complement)
        complement = [h for h in complement if naming or not _statement_noun(h)]
        if all(parsed.quote_token(q) < cue.i for q in quotes):
            # `"…," he conceded on Twitter` / `… he said of the plan`: where or of what, not content
            complement = [h for h in complement if h.dep_ not in ("prep", "prt")]
            quote_tokens = {parsed.quote_token(q) for q in quotes}
            if any(h.i in quote_tokens for h in complement):
                # `X asserted that …: “…,” he claimed`: a clause the parser hung beside the quotation
                # that has a cue of its own is that cue's attribution, not this one's
                complement = [h for h in complement if h.i in quote_tokens or not any(map(_is_cue_verb, h.subtree))]
    if cls is CueClass.SPEECH and not quotes and _ends_with_colon(parsed, cue):
        words = sum(1 for h in complement for t in h.subtree if not t.is_punct)
        if words < 4:  # "Cruz called them on it:", "released the following statement:"
            return Attribution([cue], _cue_text(cue), cls, [], [], source, 0.85, open_colon=True, sort_key=cue.i)
    ranges: list[tuple[int, int]] = []
    direct = False
    around = _parenthetical_content(parsed, cue, source, cls, complement)
    if quotes and not complement and not around:
        # `"…" than that of the CIA chief, he said`: the words the quotation governs are content too.
        complement = _quote_clause(parsed, cue, quotes, source)
    if around:
        ranges = around
        quotes = parsed.quotations_between(ranges)
    elif quotes and _quotes_are_the_complement(parsed, cue, quotes, complement):
        ranges = [(q.content_start, q.content_end) for q in quotes]
        direct = True
    elif complement:
        ranges = _clause_ranges(parsed, complement)
        inside = [q for q in parsed.quotations_between(ranges)]
        # A quotation the cue governs from outside its clause ("urged Moscow to “…”") is content too.
        ranges = _merge([*ranges, *(parsed.widen_to_quotes(q.content_start, q.content_end) for q in quotes)])
        quotes = sorted({q.open: q for q in [*quotes, *inside]}.values(), key=lambda q: q.open)
    elif quotes:
        ranges = [(q.content_start, q.content_end) for q in quotes]
        direct = True
    if not ranges:
        return None
    words = sum(len(parsed.text[a:b].split()) for a, b in ranges)
    if words < _MIN_CONTENT_TOKENS and not quotes:
        return None
    topic = bool(complement) and not direct and cls is CueClass.SPEECH and _is_topic(lemma, complement)
    confidence = 0.95 if direct else (0.85 if quotes else 0.8)
    if source is None:
        confidence *= 0.9
    media = lemma in MEDIA_VERBS
    return Attribution(
        [cue],
        _cue_text(cue),
        cls,
        ranges,
        list(quotes),
        source,
        confidence,
        direct=direct,
        topic=topic,
        media_source=media,
        sort_key=min(cue.i, *(parsed.token_at(a) for a, _ in ranges)),
    )


# Speech by a person, evidence by a document: "the senator suggested" / "the poll suggests".
_SPEECH_OR_EVIDENCE = frozenset("suggest reveal indicate estimate predict".split())


def _evidence_subject(subject: Token) -> bool:
    return subject.lemma_.lower() in EVIDENCE_SUBJECTS or subject.lower_ in EVIDENCE_SUBJECTS


def _complement(parsed: ParsedArticle, cue: Token, lemma: str, cls: CueClass) -> list[Token]:
    """The tokens that head the content: a clause, an infinitive, an object, a preposition's object."""
    kids = list(cue.children)
    clauses = [c for c in kids if (c.dep_ in _CLAUSE_DEPS and c.i > cue.i) or (c.dep_ == "ccomp")]
    if not clauses and lemma in ("ask", "wonder", "inquire"):  # "asked workers if they would attend"
        clauses = [c for c in kids if c.dep_ == "advcl" and c.i > cue.i and _marked(c, ("if", "whether"))]
    if clauses:
        out = list(clauses)
        for c in clauses:  # "said that A, and that B"
            out += [g for g in c.children if g.dep_ == "conj" and g.pos_ in ("VERB", "AUX")]
            last = c.right_edge
            if last.dep_ == "cc" and last.head.i == c.i:
                # "says there's a long month ahead but she feels …": the parser left the "but" on the
                # first clause and hung the second on the cue
                out += [g for g in kids if g.dep_ == "conj" and g.left_edge.i == last.i + 1]
        return out
    heads: list[Token] = []
    if lemma in _XCOMP_CUES:
        heads += [c for c in kids if c.dep_ == "xcomp"]
        if heads and lemma in ("urge", "call", "ask", "tell", "encourage", "order", "press", "push", "warn"):
            heads += [c for c in kids if c.dep_ in ("dobj",) and c.i < heads[0].i]
            # "called on the White House to release …": whom it calls on is part of the content
            on = [c for c in kids if c.dep_ == "prep" and c.lower_ == "on" and c.i < heads[0].i]
            heads += [g for p in on for g in p.children if g.dep_ == "pobj"]
    if not heads and lemma in ("urge", "call", "ask", "encourage", "press", "push"):
        # "urged Moscow to “address past mistakes”": the infinitive parsed as a preposition
        to = [c for c in kids if c.dep_ == "prep" and c.lower_ == "to"]
        if to:
            heads += [c for c in kids if c.dep_ == "dobj" and c.i < to[0].i] + to
    if not heads and (lemma in _OBJECT_CUES or lemma in _TOPIC_CUES or cls is not CueClass.SPEECH):
        heads += [c for c in kids if c.dep_ in _OBJECT_DEPS]
        if not heads and lemma in _NAMING_CUES and cue.dep_ != "acl":
            # "called the plan “a disaster”" with the object parsed inside the quoted name (but "a group
            # called Black Votes Matter" only names)
            heads += [
                c
                for c in kids
                if c.dep_ == "oprd" and any(not t.is_punct for t in c.lefts) and parsed.quote_at(c.i) is not None
            ]
        if heads and lemma in _NAMING_CUES | {"describe", "frame", "characterize", "portray"}:
            heads += [
                c
                for c in kids
                if c not in heads and (c.dep_ in ("oprd", "xcomp") or (c.dep_ == "prep" and c.lower_ == "as"))
            ]
        elif heads:  # "cited jobs and health care as their main worries"
            heads += [c for c in kids if c.dep_ == "prep" and c.lower_ == "as" and c.i > heads[0].i]
        if heads and lemma in _JUDGEMENT_CUES:  # "accused Cruz of weakening …", "blamed the mayor for the delays"
            heads += [c for c in kids if c.dep_ == "prep" and c.lower_ in ("for", "of") and c.i > heads[0].i]
    # "dismissed suggestions that …", "denied reports that …": the clause the noun carries.
    heads = [_claim_clause(h) or h for h in heads]
    if not heads and lemma in _GERUND_CUES:  # "reported raising $9 million", "recalled meeting him"
        heads += [c for c in kids if c.tag_ == "VBG" and c.dep_ in ("xcomp", "dobj", "ccomp") and c.i > cue.i]
    if not heads:  # "called for …", "warned of …", "talked about …", "railed against …"
        preps = _CONTENT_PREPS.get(lemma, _ANY_CONTENT_PREPS)
        heads += [c for c in kids if c.dep_ in ("prep", "prt") and c.lower_ in preps and c.i > cue.i]
        heads = [h for h in heads if any(g.dep_ in ("pobj", "pcomp") for g in h.children)][:1]
    return heads


_CLAIM_NOUNS = frozenset(
    "suggestion report claim allegation accusation rumor rumour speculation assertion notion idea charge".split()
)


def _marked(clause: Token, marks: tuple[str, ...]) -> bool:
    return any(g.dep_ == "mark" and g.lower_ in marks for g in clause.children)


def _claim_clause(noun: Token) -> Token | None:
    if noun.lemma_.lower() not in _CLAIM_NOUNS:
        return None
    if noun.lemma_.lower() in _SAYING_NOUNS and any(c.dep_ == "poss" for c in noun.children):
        return None  # "mocked his claim that …": the claim is his (see _noun_attribution)
    for child in noun.children:
        if child.dep_ in ("acl", "ccomp") and any(g.dep_ == "mark" and g.lower_ == "that" for g in child.children):
            return child
    return None


def _is_topic(lemma: str, complement: list[Token]) -> bool:
    """An object or 'about …' that names what was spoken of, rather than a clause that says what was said."""
    if any(h.dep_ in _CLAUSE_DEPS or h.dep_ == "xcomp" for h in complement):
        return False
    if any(h.dep_ in ("prep", "prt") for h in complement):
        return all(h.lower_ in _TOPIC_PREPS for h in complement if h.dep_ in ("prep", "prt")) and lemma != "warn"
    return lemma in _TOPIC_CUES


def _parenthetical_content(
    parsed: ParsedArticle, cue: Token, source: Token | None, cls: CueClass, complement: list[Token]
) -> list[tuple[int, int]]:
    """'The talks, he said, were useful': a cue set off inside the clause it reports.

    The content is the clause around it, without the cue's own words."""
    head = cue.head
    if cls is not CueClass.SPEECH or cue.dep_ != "parataxis" or source is None or complement:
        return []
    first = min(t.i for t in cue.subtree if not t.is_punct)
    if head.pos_ not in ("VERB", "AUX") or not head.left_edge.i < first or cue.i > head.i:
        return []
    doc = parsed.doc
    if doc[first - 1].text not in (",", "—", "–") or _cue_class(head) is not None:
        return []
    end = head.right_edge.i
    for aside in _asides(head):
        end = min(end, aside.left_edge.i - 1)
    inner = {t.i for t in cue.subtree}
    ranges = _ranges_of(parsed, [doc[i] for i in range(head.left_edge.i, end + 1) if i not in inner])
    return ranges if sum(len(parsed.text[a:b].split()) for a, b in ranges) >= _MIN_CONTENT_TOKENS else []


def _quote_clause(parsed: ParsedArticle, cue: Token, quotes: list[Quotation], source: Token | None) -> list[Token]:
    """A quotation's own phrase when it reaches past the quotation, cue and source excluded."""
    heads = []
    for q in quotes:
        tok = parsed.doc[parsed.quote_token(q)]
        if tok.i == cue.i or cue in tok.ancestors or (source is not None and source in tok.subtree):
            continue
        words = [t for t in tok.subtree if not (t.is_punct or t.is_space) and t.i != tok.i]
        if words and cue not in tok.subtree:
            heads.append(tok)
    return heads


def _quotes_are_the_complement(
    parsed: ParsedArticle, cue: Token, quotes: list[Quotation], complement: list[Token]
) -> bool:
    """`"…," he said` / `he said: "…"`: the quotations are the whole content, not part of a clause."""
    if not complement:
        return True
    quote_tokens = {parsed.quote_token(q) for q in quotes}
    for head in complement:
        words = [t for t in head.subtree if not t.is_punct and not t.is_space and t.dep_ != "mark"]
        if any(t.i not in quote_tokens for t in words):
            return False
    return True


def _clause_ranges(parsed: ParsedArticle, heads: list[Token]) -> list[tuple[int, int]]:
    """The character ranges of the content clauses, without a leading 'that' or edge punctuation."""
    doc = parsed.doc
    ranges: list[tuple[int, int]] = []
    starts = {h.left_edge.i for h in heads}
    for head in sorted(heads, key=lambda t: t.left_edge.i):
        start, end = head.left_edge.i, head.right_edge.i
        for aside in _asides(head):  # "…, though they blame …": the journalist's aside, not the content
            end = min(end, aside.left_edge.i - 1)
        if head.dep_ == "prep" and start == head.i and not ranges:
            start += 1  # "called for the lifting of …": the preposition belongs to the cue
        while start <= end and (doc[start].is_punct or doc[start].is_space or doc[start].lower_ == "that"):
            if doc[start].is_quote and parsed.quote_at(start + 1) is not None:
                break
            start += 1
        while end >= start and (
            ((doc[end].is_punct or doc[end].is_space) and not _closes_quote(parsed, end))
            # "… has fallen and": a coordinator is content only when the clause it joins is
            or (doc[end].dep_ == "cc" and end > start and end + 1 not in starts)
        ):
            end -= 1
        if end < start:
            continue
        a, b = doc[start].idx, doc[end].idx + len(doc[end])
        if ranges and a <= ranges[-1][1] + 2:
            ranges[-1] = (ranges[-1][0], max(b, ranges[-1][1]))
        else:
            ranges.append((a, b))
    return [parsed.widen_to_quotes(a, b) for a, b in ranges]


_ASIDE_MARKS = {"while", "though", "although", "whereas"}


def _asides(head: Token) -> list[Token]:
    """Trailing clauses set off by a comma that contrast rather than report: ", while …", ", though …"."""
    out = []
    for child in head.children:
        if child.dep_ not in ("advcl", "conj") or child.i <= head.i:
            continue
        first, doc = child.left_edge, head.doc
        after_comma = first.i > 0 and doc[first.i - 1].text == ","
        even_as = first.lower_ == "even" and first.i + 1 < len(doc) and doc[first.i + 1].lower_ in ("as", "though")
        # "a useful, although fleeting, chance": a modifier set off inside a noun phrase, not a clause
        modifier = first.i + 2 < len(doc) and doc[first.i + 1].pos_ in ("ADJ", "ADV") and doc[first.i + 2].text == ","
        if (first.lower_ in _ASIDE_MARKS and after_comma and not modifier) or even_as:
            out.append(child)
    return sorted(out, key=lambda t: t.left_edge.i)


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(b, out[-1][1]))
        else:
            out.append((a, b))
    return out


def _closes_quote(parsed: ParsedArticle, i: int) -> bool:
    tok = parsed.doc[i]
    return tok.is_quote and i > 0 and parsed.quote_at(i - 1) is not None


def _ends_with_colon(parsed: ParsedArticle, cue: Token) -> bool:
    sent = cue.sent
    last = [t for t in sent if not t.is_space]
    return bool(last) and last[-1].text == ":" and last[-1].i > cue.i


def _subject(parsed: ParsedArticle, cue: Token) -> Token | None:
    """The cue's source: its subject, the subject it shares ("…, saying …", "X stressed … and said …"),
    the agent of a passive ("was told by X"), or the antecedent of a relative ("X, who said …")."""
    node = cue
    own = [c for c in cue.children if c.dep_ in ("nsubj", "nsubjpass") and parsed.quote_at(c.i) is None]
    if own and own[0].dep_ == "nsubj":
        return own[0]
    for child in cue.children:
        if child.dep_ == "nsubj" and parsed.quote_at(child.i) is not None:
            # `"…," Amy Pope, deputy adviser, said`: the name parsed as the quotation's apposition.
            for appos in child.children:
                if appos.dep_ == "appos" and appos.pos_ in ("PROPN", "NOUN", "PRON") and appos.i < cue.i:
                    return appos
    if any(parsed.quote_at(c.i) is not None and c.i < cue.i for c in cue.children):
        # `"…," declared Senator Jeff Flake`: inverted, the source follows its cue (parsed as object).
        for child in cue.children:
            if (
                child.i > cue.i
                and child.dep_ in ("dobj", "attr", "nsubj", "npadvmod", "dative", "oprd", "appos")
                and child.pos_ in ("PROPN", "NOUN", "PRON")
                and parsed.quote_at(child.i) is None
            ):
                return child
    for _ in range(6):
        for child in node.children:
            if child.dep_ in ("nsubj", "nsubjpass") and parsed.quote_at(child.i) is None:
                if child.dep_ == "nsubjpass" and node is cue:
                    continue  # "was asked": the asker is elsewhere
                return child
        for child in node.children:
            if child.dep_ == "agent":
                for pobj in child.children:
                    if pobj.dep_ == "pobj":
                        return pobj
        if node.dep_ in ("conj", "xcomp", "advcl", "pcomp", "acl", "prep") and node.head.i != node.i:
            if node.dep_ == "acl" and _statement_noun(node.head):
                # "Damascus issued a statement emphasizing …": whoever issued it speaks through it
                issuer = node.head.head
                subjects = [c for c in issuer.children if c.dep_ == "nsubj"] if node.head.dep_ == "dobj" else []
                return subjects[0] if subjects else node.head
            if node.dep_ == "acl" and node.head.pos_ in ("NOUN", "PROPN", "PRON"):
                return node.head  # "a spokesman, saying …"
            node = node.head
            continue
        break
    return _name_before(parsed, cue)


def _name_before(parsed: ParsedArticle, cue: Token) -> Token | None:
    """`…, former president Bill Clinton said his wife …` parsed with no subject (the name hung as an
    apposition further back): a finite cue takes the name written right before it."""
    if cue.tag_ not in ("VBD", "VBZ", "VBP"):
        return None
    doc = parsed.doc
    j = cue.i - 1
    while j > cue.sent.start and doc[j].pos_ in ("ADV", "AUX", "PART"):
        j -= 1
    prev = doc[j]
    if (
        j < cue.sent.start
        or prev.pos_ not in ("PROPN", "NOUN", "PRON")
        or prev.dep_ in ("pobj", "poss", "dobj", "npadvmod")
        or prev.ent_type_ in ("DATE", "TIME")
        or parsed.quote_at(prev.i) is not None
    ):
        return None
    return prev


def _statement_noun(tok: Token) -> bool:
    return tok.pos_ == "NOUN" and tok.lemma_.lower() in SPEECH_NOUNS


def _according_to(parsed: ParsedArticle, sent: SpacySpan, according: Token, taken: set[int]) -> Attribution | None:
    doc = parsed.doc
    to = doc[according.i + 1]
    pobj = next((c for c in to.children if c.dep_ == "pobj"), None)
    if pobj is None:
        pobj = next((c for c in according.children if c.dep_ == "pobj"), None)
    if pobj is None:
        return None
    phrase_start = according.i
    phrase_end = pobj.right_edge.i
    tokens = [t for t in sent if not (phrase_start <= t.i <= phrase_end)]
    tokens = [t for t in tokens if t.i not in taken]
    # The content is the rest of the sentence, in one or two runs around the phrase.
    ranges: list[tuple[int, int]] = []
    for run in _runs(tokens):
        while run and (run[0].is_punct or run[0].is_space):
            if run[0].is_quote and parsed.quote_at(run[0].i + 1) is not None:
                break
            run = run[1:]
        while run and (run[-1].is_punct or run[-1].is_space) and not _closes_quote(parsed, run[-1].i):
            run = run[:-1]
        if len(run) >= 1:
            ranges.append((run[0].idx, run[-1].idx + len(run[-1])))
    ranges = [parsed.widen_to_quotes(a, b) for a, b in ranges]
    if not ranges or sum(len(parsed.text[a:b].split()) for a, b in ranges) < 3:
        return None
    quotes = parsed.quotations_between(ranges)
    direct = _only_quotations(parsed, ranges, quotes)
    if direct:
        ranges = [(q.content_start, q.content_end) for q in quotes]
    return Attribution(
        [according, to],
        "according to",
        CueClass.SPEECH,
        ranges,
        quotes,
        pobj,
        0.85,
        direct=direct,
        sort_key=min(according.i, parsed.token_at(ranges[0][0])),
    )


def _only_quotations(parsed: ParsedArticle, ranges: list[tuple[int, int]], quotes: list[Quotation]) -> bool:
    """The content is its quotations and nothing else but punctuation."""
    if not quotes:
        return False
    return all(
        not parsed.text[x:y].strip(" ,;:.!?\"'“”‘’«»\n") for a, b in ranges for x, y in _outside(a, b, quotes) if x < y
    )


def _ranges_of(parsed: ParsedArticle, tokens: list[Token]) -> list[tuple[int, int]]:
    """The character ranges of the runs of consecutive tokens, without the punctuation and the
    joining words ('that', 'and', 'but') at their edges; quotation marks stay with their quotation."""
    ranges = []
    for run in _runs(tokens):
        while run and (run[0].is_punct or run[0].is_space or run[0].lower_ in _EDGE_WORDS):
            run = run[1:]
        while run and (run[-1].is_punct or run[-1].is_space or run[-1].lower_ in _EDGE_WORDS):
            if _closes_quote(parsed, run[-1].i):
                break
            run = run[:-1]
        if run:
            ranges.append(parsed.widen_to_quotes(run[0].idx, run[-1].idx + len(run[-1])))
    return ranges


_EDGE_WORDS = ("that", "and", "but")


def _runs(tokens: list[Token]) -> list[list[Token]]:
    runs: list[list[Token]] = []
    for t in tokens:
        if runs and runs[-1][-1].i == t.i - 1:
            runs[-1].append(t)
        else:
            runs.append([t])
    return runs


def _colon_attribution(parsed: ParsedArticle, sent: SpacySpan) -> Attribution | None:
    """`Trump: 'We will win'` and `Pat Caddell: Democrat voters worried…`: a short name, a colon, the
    content. A dash does the same before a quotation: `Bernie Sanders - "…"` (debate transcripts)."""
    words = [t for t in sent if not t.is_space]
    colon = next((t for t in words[:8] if t.text == ":" or _dash_before_quote(parsed, t)), None)
    if colon is None or colon.i == words[0].i:
        return None
    before = [t for t in words if t.i < colon.i]
    if len(before) > 6 or any(t.pos_ in ("VERB", "AUX") and t.tag_ != "VBN" for t in before):
        return None
    names = [t for t in before if t.ent_type_ in ("PERSON", "ORG", "NORP", "GPE") or t.pos_ == "PROPN" or t.is_title]
    if not names:
        return None
    after = [t for t in words if t.i > colon.i]
    if len(after) < 2:
        return None
    start, end = after[0], after[-1]
    while end.i > start.i and (end.is_punct and not _closes_quote(parsed, end.i)):
        end = parsed.doc[end.i - 1]
    a, b = parsed.widen_to_quotes(start.idx, end.idx + len(end))
    quotes = parsed.quotations_between([(a, b)])
    nouns = [t for t in before if t.pos_ in ("PROPN", "NOUN", "PRON") and not (t.is_punct or t.is_space)]
    source = nouns[-1] if nouns else names[-1]  # "The editorial:": the noun, not "The"
    direct = _only_quotations(parsed, [(a, b)], quotes)
    if colon.text != ":" and not direct:
        return None
    ranges = [(q.content_start, q.content_end) for q in quotes] if direct else [(a, b)]
    return Attribution(
        [colon], colon.text, CueClass.SPEECH, ranges, quotes, source, 0.75, direct=direct, sort_key=colon.i
    )


_DASHES = "-–—―"
# Subjects that name no source: "Here is what he said:", "It went like this:".
_NO_SOURCE = frozenset("it this that these those there here what which who".split())


def _colon_frame(parsed: ParsedArticle, sent: SpacySpan) -> Attribution | None:
    """`Trump went even further: “…”` / `Zeldin gave the technique a whirl on CNN: ''…''`: a clause
    with a subject, then a colon and a quotation (here, or opening the next sentence). Whatever the
    verb, the quotation is what the subject said."""
    words = [t for t in sent if not t.is_space]
    colons = [t for t in words if t.text == ":"]
    if not colons:
        return None
    colon = colons[0]
    after = [t for t in words if t.i > colon.i]
    quotes = parsed.quotations_between([(colon.idx, sent.end_char)])
    if after and not (quotes and _only_quotations(parsed, [(colon.idx + 1, after[-1].idx + len(after[-1]))], quotes)):
        return None
    # The main clause before the colon (the parser may hang it under the quotation)
    verbs = [t for t in words if t.i < colon.i and t.pos_ in ("VERB", "AUX") and _has_subject(t)]
    if not verbs:
        return None
    verb = min(verbs, key=lambda t: sum(1 for _ in t.ancestors))
    if verb.lemma_.lower() == "be" or any(a.i < colon.i for a in verb.ancestors):
        return None
    subjects = [c for c in verb.children if c.dep_ == "nsubj" and parsed.quote_at(c.i) is None]
    if not subjects or subjects[0].lower_ in _NO_SOURCE or subjects[0].pos_ not in ("PROPN", "NOUN", "PRON"):
        return None
    if not after:  # the quotation opens the next sentence
        return Attribution([verb], _cue_text(verb), CueClass.SPEECH, [], [], subjects[0], 0.75, open_colon=True)
    ranges = [(q.content_start, q.content_end) for q in quotes]
    return Attribution(
        [verb], _cue_text(verb), CueClass.SPEECH, ranges, quotes, subjects[0], 0.75, direct=True, sort_key=verb.i
    )


def _byline_attribution(parsed: ParsedArticle, quotes: list[Quotation]) -> Attribution | None:
    """`“…” ― Pamela Padilla`: a paragraph that is a quotation signed by a dash and a name, as in
    readers' voices, testimonials and epigraphs."""
    block = parsed.block_at(quotes[0].open)
    if block is None or parsed.text[block.start : quotes[0].open].strip():
        return None
    after = quotes[-1].close
    # on the same line, or alone in the next paragraph ("…"\n\n- Bernie Sanders.)
    signed = _BYLINE.match(parsed.text, after, min(len(parsed.text), after + 120))
    if signed is None or (parsed.text[after : signed.start(1)].count("\n") and block.end > after + 1):
        return None
    span = parsed.doc.char_span(signed.start(2), signed.end(2), alignment_mode="expand")
    name = [t for t in span or () if not t.is_space]
    while name and name[-1].is_punct:
        name = name[:-1]
    if not 1 <= len(name) <= 8 or not (name[0].is_title or name[0].pos_ == "PROPN"):
        return None
    if any(not (t.is_title or t.is_upper or t.pos_ == "PROPN" or t.like_num or t.text == ",") for t in name):
        return None  # `― and so it goes`: no name
    head = name[0]
    for t in name:  # "Jane Doe, 34, Ohio": the name before the first comma
        if t.text == ",":
            break
        head = t
    dash = parsed.doc[parsed.token_at(signed.start(1))]
    ranges = [(q.content_start, q.content_end) for q in quotes]
    return Attribution([dash], signed.group(1), CueClass.SPEECH, ranges, list(quotes), head, 0.85, direct=True)


# A dash, then the rest of the paragraph: a short name, maybe with an age or a place.
_BYLINE = re.compile(r"[\s.,]*([-–—―])[ \t\xa0]*([^\n]{1,80}?)[ \t\xa0.]*(?:\n|$)")


def _statement_frame(parsed: ParsedArticle, sent: SpacySpan) -> Attribution | None:
    """`Howard continued his scathing remarks.` / `McConnell delivered a blunt message.`: a sentence
    about a statement, with no content of its own; the quotation that opens the next sentence is it."""
    words = [t for t in sent if not (t.is_space or t.is_punct)]
    last = [t for t in sent if not t.is_space]
    if not words or parsed.quotations_in(sent) or last[-1].text not in (".", ":"):
        return None
    root = sent.root
    obj = next((c for c in root.children if c.dep_ == "dobj"), None)
    if root.pos_ != "VERB" or obj is None or not _statement_noun(obj) or obj.right_edge.i != words[-1].i:
        return None
    source = next((c for c in root.children if c.dep_ == "nsubj"), None)
    if source is None or source.lower_ in _NO_SOURCE or source.pos_ not in ("PROPN", "NOUN", "PRON"):
        return None
    return Attribution([root], _cue_text(root), CueClass.SPEECH, [], [], source, 0.75, open_colon=True)


# Fewer words are a label or a scare quote ("alternative", "super PAC"), as often the writer's as anyone's.
_MIN_QUOTED_WORDS = 3
_TITLE_WORDS = frozenset("the a an of and to in for on at with from by".split())


def _subjects_words(parsed: ParsedArticle, q: Quotation) -> Attribution | None:
    """`Trump hints '2nd Amendment people' his secret weapon`: a quotation of a few words under a
    verb that is no cue is the words of that verb's subject, when the subject names someone."""
    words = q.content(parsed.text).split()
    if len(words) < _MIN_QUOTED_WORDS:
        return None
    if all(w[:1].isupper() or w.lower() in _TITLE_WORDS for w in words) and words[-1][-1:] not in ".?!,":
        return None  # "Meet the Press", "How the Grinch Stole Christmas": a title
    node = parsed.doc[parsed.quote_token(q)]
    while node.head.i != node.i and not (node.pos_ in ("VERB", "AUX") and _has_subject(node)):
        node = node.head
    if parsed.quote_at(node.i) is not None or _cue_class(node) not in (None, CueClass.SPEECH):
        return None
    source = next((c for c in node.children if c.dep_ == "nsubj" and parsed.quote_at(c.i) is None), None)
    if source is None or source.lower_ in _NO_SOURCE:
        return None
    named = source.ent_type_ in ("PERSON", "ORG", "NORP", "GPE") or source.pos_ in ("PROPN", "PRON")
    if not named and not any(c.pos_ == "PROPN" or c.dep_ == "poss" for c in source.children):
        return None
    return Attribution(
        [node],
        _cue_text(node),
        CueClass.SPEECH,
        [(q.content_start, q.content_end)],
        [q],
        source,
        0.5,
        sort_key=parsed.quote_token(q),
    )


def _dash_before_quote(parsed: ParsedArticle, tok: Token) -> bool:
    nxt = tok.nbor(1) if tok.i + 1 < len(parsed.doc) else None
    return (
        tok.text in _DASHES
        and nxt is not None
        and (parsed.quote_at(nxt.i) is not None or (nxt.is_quote and parsed.quote_at(nxt.i + 1) is not None))
    )


def _outside(a: int, b: int, quotes: list[Quotation]) -> list[tuple[int, int]]:
    out, pos = [], a
    for q in quotes:
        out.append((pos, q.content_start))
        pos = q.content_end
    out.append((pos, b))
    return out


def _content_tokens(parsed: ParsedArticle, attribution: Attribution) -> set[int]:
    out: set[int] = set()
    for a, b in attribution.content:
        span = parsed.doc.char_span(a, b, alignment_mode="expand")
        if span is not None:
            out.update(t.i for t in span)
    return out


def _continues(parsed: ParsedArticle, attribution: Attribution, q: Quotation) -> bool:
    """A quotation with no cue of its own goes on with the attribution before it: in the same
    paragraph after the cue sentence (`"…," he said. "…"`), or opening the next paragraph."""
    if attribution.cue_class is not CueClass.SPEECH or attribution.headline:
        return False
    last_end = max(b for _, b in attribution.content)
    if q.open < last_end:
        return False
    here, there = parsed.block_index(q.open), parsed.block_index(last_end - 1)
    if here is None or there is None:
        return False
    # The sentence of the placeholder word: a doubled-apostrophe mark ('') is masked as a space and a
    # curly mark, and that space ends the sentence before.
    sent = parsed.doc[parsed.quote_token(q)].sent
    # The quotation must be the sentence (a standalone quote), not a phrase inside another one.
    masked = parsed.doc.text  # boilerplate is blank there
    outside = masked[sent.start_char : q.open] + masked[q.close : sent.end_char]
    if outside.strip(" .,;:!?\"'“”‘’\n\t\xa0"):
        return False
    if here == there:
        between = parsed.text[last_end : q.open]
        return len(between) < 300
    return here == there + 1 and not parsed.text[parsed.blocks_start(here) : q.open].strip()


def mention_for(parsed: ParsedArticle, attribution: Attribution, source: Source) -> QuoteMention:
    """The record of one attribution, once its source is resolved."""
    text = parsed.text
    content = tuple(Span(a, b, text[a:b]) for a, b in attribution.content)
    quotes = sorted(attribution.quotations, key=lambda q: q.open)
    if attribution.direct:
        kind = _direct_or_partial(parsed, attribution)
        spans = tuple(Span(q.content_start, q.content_end, q.content(text)) for q in quotes) or content
        content = spans
    elif quotes:
        kind = MentionKind.PARTIAL
        spans = tuple(Span(q.content_start, q.content_end, q.content(text)) for q in quotes)
    else:
        kind = MentionKind.TOPIC if attribution.topic else MentionKind.INDIRECT
        spans = content
    confidence = attribution.confidence * (1.0 if all(q.balanced for q in quotes) else 0.7)
    if kind is MentionKind.INDIRECT:
        confidence *= 0.85
    return QuoteMention(
        article_id=parsed.article.id,
        kind=kind,
        spans=spans,
        cue=attribution.cue_text,
        speaker_mention=source.mention,
        speaker_id=source.speaker.id if source.speaker is not None else None,
        confidence=round(confidence * source.confidence, 3),
        cue_class=attribution.cue_class,
        content=content if content != spans else (),
        speaker_span=source.span,
        headline=attribution.headline,
    )


def _direct_or_partial(parsed: ParsedArticle, attribution: Attribution) -> MentionKind:
    """Direct when the quotation stands as the sentence's own clause: it opens the sentence or
    follows a colon or a comma after its cue, and starts with a capital letter."""
    text = parsed.text
    q = min(attribution.quotations, key=lambda x: x.open)
    content = q.content(text)
    line_start = text.rfind("\n", 0, q.open) + 1
    before = text[line_start : q.open].rstrip()
    cue_at = attribution.cue[0].idx
    opens = not before or before[-1] in ".:!?…-–—―" or (before[-1] == "," and cue_at < q.open)
    return MentionKind.DIRECT if opens and content[:1].isupper() else MentionKind.PARTIAL


def _cue_text(cue: Token) -> str:
    """The cue as written: 'told reporters', 'said in a statement', 'called on', 'according to'."""
    pieces: list[SpacySpan | Token] = [cue]
    for child in cue.children:
        if child.dep_ in ("aux", "auxpass", "neg") and child.i < cue.i and child.i >= cue.i - 3:
            continue
        particle = child.dep_ == "prt" or (
            child.dep_ == "advmod" and child.lower_ in SPEECH_PHRASALS.get(cue.lemma_, ())
        )
        if (child.dep_ in ("dobj", "dative") and child.lower_ in ("reporters", "journalists")) or particle:
            pieces.append(child)
        elif child.dep_ == "prep" and child.lower_ in ("in", "on"):
            pobj = [g for g in child.children if g.dep_ == "pobj"]
            if any(g.lemma_ in SPEECH_NOUNS for g in pobj):
                pieces.append(cue.doc[child.i : child.right_edge.i + 1])
            elif cue.lemma_ == "call" and child.lower_ == "on" and not any(g.ent_type_ == "DATE" for g in pobj):
                pieces.append(child)
    pieces.sort(key=lambda p: p.i if isinstance(p, Token) else p.start)
    return " ".join(p.text for p in pieces)


__all__ = ["Attribution", "extract_article", "mention_for", "read_attributions"]
