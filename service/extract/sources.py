"""Who a source is: the speaker a source phrase refers to, read with the rest of the article.

A source is written many ways: a full name ("Retired Lt. Gen. Michael Flynn"), a surname ("Flynn"),
a pronoun ("he", "she", "they"), a title alone ("the senator", "the spokeswoman"), a relative ("who"),
an institution ("the Kremlin", "Syria's new leadership"), a group ("Democrats"), or nobody in
particular ("officials", "critics", "some"). The article is read front to back; short names point to
the earliest, longest full name of the article that ends with them, pronouns to the last person or
group that fits, titles to the person the article gave that title. Where the text does not say who
(an anonymous group, a pronoun with nobody to point to), the source stays unresolved: the mention
keeps the words as written and no speaker id, rather than a guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from spacy.tokens import Span as SpacySpan
from spacy.tokens import Token

from ..records import QuoteMention, Span, Speaker, SpeakerKind
from ..speakers import SpeakerRegistry, surname
from .parse import ParsedArticle

if TYPE_CHECKING:
    from .attribution import Attribution

_MALE = {"he", "him", "his", "himself"}
_FEMALE = {"she", "her", "hers", "herself"}
_PLURAL = {"they", "them", "their"}
_ANONYMOUS = {
    "who",
    "which",
    "that",
    "i",
    "we",
    "you",
    "one",
    "some",
    "many",
    "others",
    "most",
    "few",
    "several",
    "all",
    "both",
    "each",
    "everyone",
    "anyone",
    "someone",
    "somebody",
    "nobody",
    "people",
}
_HONORIFIC_GENDER = {"mr": "m", "mrs": "f", "ms": "f", "miss": "f", "sir": "m", "madam": "f", "lady": "f"}
_ROLE_GENDER = {
    "spokeswoman": "f",
    "spokesman": "m",
    "congresswoman": "f",
    "congressman": "m",
    "chairwoman": "f",
    "chairman": "m",
    "businesswoman": "f",
    "businessman": "m",
    "wife": "f",
    "husband": "m",
    "mother": "f",
    "father": "m",
    "daughter": "f",
    "son": "m",
    "lady": "f",
    "queen": "f",
    "king": "m",
    "prince": "m",
    "princess": "f",
}
TITLE_WORDS = {
    "minister",
    "envoy",
    "president",
    "spokesman",
    "spokeswoman",
    "spokesperson",
    "leader",
    "secretary",
    "ambassador",
    "chief",
    "head",
    "prince",
    "king",
    "general",
    "official",
    "adviser",
    "advisor",
    "director",
    "chairman",
    "chairwoman",
    "commander",
    "premier",
    "chancellor",
    "senator",
    "sen",
    "rep",
    "representative",
    "congressman",
    "congresswoman",
    "governor",
    "gov",
    "mayor",
    "candidate",
    "nominee",
    "manager",
    "strategist",
    "economist",
    "professor",
    "lawyer",
    "attorney",
    "judge",
    "justice",
    "speaker",
    "pollster",
    "analyst",
    "businessman",
    "businesswoman",
    "founder",
    "ceo",
    "executive",
    "lady",
    "vice",
    "aide",
    "mogul",
    "billionaire",
    "democrat",
    "republican",
    "chair",
}
_NAME_WORD = r"(?:[A-Z][\w'’-]*|(?:al|el|ad|as|ash|an|ar)-[A-Z][\w'’-]*|bin|ibn|abu|de|van|von)"
_ALIAS_DECLARATION = re.compile(
    rf"(?P<name>[A-Z][\w'’-]+(?:\s+{_NAME_WORD}){{1,4}})\s*,?\s*\(?\s*(?:also|better|more commonly|widely)\s+"
    rf"known\s+as\s+(?:the\s+)?(?P<alias>[A-Z][\w'’-]+(?:\s+{_NAME_WORD}){{0,4}})"
)
_TITLE_START = re.compile(r"^(?:President|Senator|Sen|Rep|Gov|Governor|Mayor|Judge|General|Minister|Secretary)\b")
_STATEMENT_NOUNS = {"statement", "readout", "communique", "release", "declaration", "letter", "post"}


@dataclass(frozen=True, slots=True)
class Source:
    speaker: Speaker | None  # None: the text does not say who
    mention: str  # as written
    span: Span | None
    confidence: float


_NOBODY = Source(None, "", None, 0.6)


@dataclass(slots=True)
class Discourse:
    """What the article has said so far about who is who."""

    parsed: ParsedArticle
    registry: SpeakerRegistry
    names: list[str] = field(default_factory=list)  # full person names in order of appearance
    people: list[Speaker] = field(default_factory=list)  # people in order of last mention
    gender: dict[str, str] = field(default_factory=dict)
    last_group: Speaker | None = None  # last non-person subject, media included
    last_issuer: Speaker | None = None  # last institution that issued a statement
    touched: dict[str, Speaker] = field(default_factory=dict)

    # -- before reading: the article's names --------------------------------------------------

    def learn_names(self) -> None:
        """The article's full person names (for short names) and the aliases its text declares.

        People enter the registry when they speak; a declared alias is registered at once, so that
        the alias never becomes a second person."""
        text, doc, reg = self.parsed.text, self.parsed.doc, self.registry
        for m in _ALIAS_DECLARATION.finditer(text):  # read from the raw text: captions teach names too
            name, alias = clean_name(m.group("name")), clean_name(m.group("alias"))
            full = _longest_person_suffix(name)
            speaker = reg.person(full)
            reg.merge_alias(speaker, alias)
            self.touched[speaker.id] = speaker
            if full not in self.names:
                self.names.append(full)
        for ent in doc.ents:
            name = clean_name(ent.text)
            if ent.label_ != "PERSON" or len(name.split()) < 2 or "qqqq" in name:
                continue
            name = _strip_honorific(name)
            if len(name.split()) < 2:
                continue
            if name not in self.names:
                self.names.append(name)
            known = reg.lookup(name)
            if known is not None and known.kind is not SpeakerKind.PERSON:
                continue  # NER calls "Hayat Tahrir al-Sham" a person; the registry knows better
            roles = (_role_before(ent), _role_after(ent), _role_window(ent))
            role = next((r for r in roles if r and TITLE_WORDS & set(r.lower().replace(".", "").split())), None)
            if role:
                speaker = reg.person(name, role)
                self.touched[speaker.id] = speaker

    # -- resolving a source -------------------------------------------------------------------

    def resolve(self, attribution: Attribution) -> Source:
        subj = attribution.source
        if subj is None:
            return _NOBODY
        span = _phrase_span(self.parsed, subj)
        found = self._resolve(subj, attribution)
        speaker, confidence = found if found is not None else (None, 0.6)
        mention = span.text if span is not None else subj.text
        if (speaker is not None and speaker.kind is SpeakerKind.MEDIA) or attribution.media_source:
            # An outlet reports; the statement belongs to whoever its report names ("Sana said Damascus
            # wants …"), if anyone.
            if speaker is not None and speaker.kind is SpeakerKind.MEDIA:
                self.last_group = speaker
            # "TASS reported that a delegation arrived" is news, not a statement the delegation made.
            inner = None if attribution.media_source else self._reported_speaker(attribution)
            if inner is not None:
                return inner
            speaker, confidence = None, 0.6
        return Source(speaker, mention, span, confidence)

    def _reported_speaker(self, attribution: Attribution) -> Source | None:
        cue = attribution.cue[0]
        for clause in cue.children:
            if clause.dep_ != "ccomp":
                continue
            for subj in clause.children:
                if subj.dep_ == "nsubj" and subj.i != (attribution.source.i if attribution.source else -1):
                    found = self._resolve(subj, attribution, create=False)  # a known speaker only
                    if found is not None and found[0].kind is not SpeakerKind.MEDIA:
                        span = _phrase_span(self.parsed, subj)
                        return Source(found[0], span.text if span else subj.text, span, found[1] * 0.8)
        return None

    def _resolve(self, subj: Token, attribution: Attribution, create: bool = True) -> tuple[Speaker, float] | None:
        reg = self.registry
        low = subj.lower_
        if low in _MALE | _FEMALE:
            person = self._pronoun_person("m" if low in _MALE else "f")
            return (person, 0.85) if person else None
        if low in _PLURAL or low == "it":
            return (self.last_group, 0.75) if self.last_group else None
        if low in ("who", "which", "that") and subj.dep_.startswith("nsubj"):
            antecedent = _antecedent(subj)
            if antecedent is not None and antecedent.i != subj.i:
                return self._resolve(antecedent, attribution)
            return None
        if low in _ANONYMOUS:
            return None
        for child in subj.children:  # "Syria's interim leader, Ahmed al-Sharaa": the apposition names them
            if child.dep_ == "appos" and child.text[:1].isupper():
                found = self._resolve(child, attribution, create)
                if found is not None and found[0].kind is SpeakerKind.PERSON:
                    return found
        np = noun_phrase(subj)
        np_text = clean_name(np.text)
        doc = self.parsed.doc
        for ent in doc.ents:  # a PERSON entity heading the subject's phrase (not "Lopez's spokeswoman")
            if ent.label_ == "PERSON" and np.start <= ent.start and ent.end <= np.end + 1 and ent.root.i == subj.i:
                speaker = self.person(clean_name(ent.text))
                if speaker is not None:
                    role = _role_before(ent)
                    if role and not speaker.role:
                        speaker.role = role
                    self._learn_gender(speaker, np)
                    return speaker, 0.95
        words = np_text.split()
        name_words = [t for t in np if t.pos_ == "PROPN" and t.is_title and t.dep_ in ("compound", *subj.dep_.split())]
        if subj.pos_ == "PROPN" and subj.ent_type_ not in ("ORG", "GPE", "NORP") and 2 <= len(name_words) <= 4:
            # "Ana Ruiz" that the tagger knows as a name but NER missed
            name = _strip_honorific(" ".join(t.text for t in name_words))
            if len(name.split()) >= 2 and reg.lookup(name) is None and not _TITLE_START.match(name):
                return reg.person(name), 0.8
        for k in range(len(words)):  # institutions and titles, by alias (longest phrase first)
            speaker = reg.lookup(" ".join(words[k:]))
            if speaker is not None:
                if speaker.kind is SpeakerKind.PERSON and len(words) > 1 and k == len(words) - 1:
                    continue  # a bare surname inside a longer phrase: below
                if subj.lemma_ in _STATEMENT_NOUNS:
                    attribution.via_statement = True
                return speaker, (0.85 if k == 0 else 0.75)
        if subj.lemma_ in _STATEMENT_NOUNS and self.last_issuer is not None:
            attribution.via_statement = True
            return self.last_issuer, 0.7
        if np_text[:1].isupper() and (subj.pos_ in ("PROPN", "NOUN") or subj.ent_type_ == "PERSON"):
            name = _strip_honorific(np_text) if subj.ent_type_ != "PERSON" else _strip_honorific(clean_name(subj.text))
            if len(name.split()) == 1:  # a bare surname ("Sharaa" is often tagged NOUN)
                speaker = self.person(name)
                if speaker is not None:
                    self._learn_gender(speaker, np)
                    return speaker, 0.85
                if subj.ent_type_ == "PERSON":
                    return reg.person(name), 0.6
        title = self._by_title(subj, np)
        if title is not None:
            return title, 0.7
        for ent in doc.ents:  # a named institution or group
            if ent.label_ in ("ORG", "GPE", "NORP") and np.start <= ent.start and ent.end <= np.end:
                speaker = reg.lookup(ent.text)
                if speaker is None and create and ent.root.i == subj.i and ent.label_ in ("ORG", "NORP"):
                    speaker = reg.organisation(clean_name(ent.text))
                if speaker is not None:
                    return speaker, 0.7
        return None

    def person(self, name: str) -> Speaker | None:
        """A person's name as written → the canonical speaker, completing short names in the article."""
        name = _strip_honorific(name)
        if len(name.split()) >= 2:
            return self.registry.person(name)
        key = surname(name)
        for full in sorted(self.names, key=lambda n: -len(n)):  # the earliest, longest full name
            if surname(full) == key:
                return self.registry.person(full)
        found = self.registry.lookup(name)
        if found is not None and found.kind is SpeakerKind.PERSON:
            return found
        return self.registry.find_by_surname(name)

    def _pronoun_person(self, gender: str) -> Speaker | None:
        for person in reversed(self.people):
            if self.gender.get(person.id, gender) == gender:
                return person
        return None

    def _by_title(self, subj: Token, np: SpacySpan) -> Speaker | None:
        """'the senator', 'the former first lady': the latest person the article gave that title."""
        if subj.pos_ not in ("NOUN",) or subj.tag_ == "NNS" or not any(t.lower_ == "the" for t in np):
            return None
        head = subj.lower_
        if head not in TITLE_WORDS and head not in _ROLE_GENDER:
            return None
        for person in reversed(self.people):
            role = (person.role or "").lower()
            if head in role.replace(".", " ").split():
                return person
        return None

    def _learn_gender(self, speaker: Speaker, np: SpacySpan) -> None:
        for tok in np:
            g = _HONORIFIC_GENDER.get(tok.lower_.rstrip(".")) or _ROLE_GENDER.get(tok.lower_)
            if g:
                self.gender.setdefault(speaker.id, g)
        for word in (speaker.role or "").lower().split():
            if word in _ROLE_GENDER:
                self.gender.setdefault(speaker.id, _ROLE_GENDER[word])

    # -- after a mention or a sentence --------------------------------------------------------

    def spoke(self, attribution: Attribution, source: Source, mention: QuoteMention) -> None:
        speaker = source.speaker
        if speaker is None:
            return
        self.touched[speaker.id] = speaker
        if speaker.kind is SpeakerKind.PERSON:
            self._salient(speaker)
            if attribution.source is not None and attribution.source.lower_ in _MALE | _FEMALE:
                self.gender.setdefault(speaker.id, "m" if attribution.source.lower_ in _MALE else "f")
        elif (
            attribution.via_statement
            or "statement" in mention.cue
            or any(w in _STATEMENT_NOUNS for w in mention.speaker_mention.lower().split())
        ):
            self.last_issuer = speaker

    def _salient(self, person: Speaker) -> None:
        if person in self.people:
            self.people.remove(person)
        self.people.append(person)

    def after_sentence(self, sent: SpacySpan, cue_lemmas: frozenset[str]) -> None:
        """Who a later 'he' or 'it' points to: the people and institutions this sentence made subjects."""
        reg = self.registry
        if any(t.lemma_ in ("report", "cite") for t in sent):
            # "…, the Russian news agency RIA Novosti reported." A later "It noted" is the agency.
            for ent in sent.ents:
                outlet = reg.lookup(ent.text)
                if outlet is not None and outlet.kind is SpeakerKind.MEDIA:
                    self.last_group = outlet
        for tok in sent:
            if not tok.dep_.startswith("nsubj") or self.parsed.quote_at(tok.i) is not None:
                continue
            if tok.lower_ in _MALE | _FEMALE | _PLURAL | _ANONYMOUS or tok.lower_ == "it":
                continue
            appos = next((c for c in tok.children if c.dep_ == "appos" and c.pos_ == "PROPN"), None)
            if appos is not None:
                tok = appos  # "Mrs. Lopez's spokeswoman, Ana Ruiz, said": Ana Ruiz is the subject
            np = noun_phrase(tok)
            person = next(
                (
                    e
                    for e in sent.ents
                    if e.label_ == "PERSON" and np.start <= e.start and e.end <= np.end + 1 and e.root.i == tok.i
                ),
                None,
            )
            name = person.text if person is not None else (tok.text if tok.pos_ == "PROPN" else "")
            speaker = self.person(clean_name(name)) if name else None
            if speaker is not None and speaker.kind is SpeakerKind.PERSON:
                self._learn_gender(speaker, np)
                self._salient(speaker)
                continue
            if tok.head.lemma_ in cue_lemmas or tok.head.lemma_ in ("issue", "report"):
                group = reg.lookup(clean_name(np.text))
                if group is None:
                    for ent in sent.ents:
                        if np.start <= ent.start and ent.end <= np.end and ent.label_ in ("ORG", "GPE", "NORP"):
                            group = reg.lookup(ent.text)
                if group is not None and group.kind is not SpeakerKind.PERSON:
                    self.last_group = group
                    statement = any(g.lemma_ in _STATEMENT_NOUNS for c in tok.head.children for g in (c, *c.children))
                    if statement and group.kind is SpeakerKind.ORGANISATION:
                        self.last_issuer = group

    def touched_speakers(self) -> tuple[Speaker, ...]:
        return tuple(self.touched[k] for k in sorted(self.touched))


# -- phrases --------------------------------------------------------------------------------------


def noun_phrase(tok: Token) -> SpacySpan:
    """The subject's own words: its left modifiers and compounds, no relative clause or apposition."""
    left = tok
    for child in tok.lefts:
        if child.dep_ in ("det", "amod", "compound", "poss", "nmod", "nummod", "advmod", "case", "punct", "quantmod"):
            left = child.left_edge if child.left_edge.i < left.i else child
            break
    start = min(left.i, tok.i)
    while (start < tok.i and tok.doc[start].dep_ in ("punct", "cc")) or tok.doc[start].is_space:
        start += 1
    return tok.doc[start : tok.i + 1]


def _phrase_span(parsed: ParsedArticle, tok: Token) -> Span | None:
    """The source as written: its noun phrase and the name in apposition to it ("Ukraine's foreign
    minister Andriy Sybiga", "Mrs. Lopez's spokeswoman, Ana Ruiz")."""
    np = noun_phrase(tok)
    end = np.end
    for child in tok.children:
        if child.dep_ == "appos" and child.i > tok.i and child.pos_ == "PROPN":
            end = max(end, noun_phrase(child).end)
    a, b = np.start_char, tok.doc[end - 1].idx + len(tok.doc[end - 1])
    return Span(a, b, parsed.text[a:b])


def _antecedent(rel: Token) -> Token | None:
    """'Mr. Kamin, who emphasized …': the noun the relative clause hangs on."""
    clause = rel.head
    if clause.dep_ == "relcl":
        return clause.head
    return None


def clean_name(name: str) -> str:
    name = re.sub(r"['’]s$", "", name.strip())
    return re.sub(r"\s+", " ", name).strip(" ,.")


def _strip_honorific(name: str) -> str:
    return re.sub(r"^(?:Mr|Mrs|Ms|Miss|Dr|Sen|Rep|Gov|Gen|Lt|Col|Adm|Prof)\.?\s+", "", name).strip()


def _longest_person_suffix(name: str) -> str:
    """'Syria's leader Ahmed al-Sharaa' → 'Ahmed al-Sharaa': the capitalised tail after any title."""
    words = name.split()
    tail: list[str] = []
    for w in reversed(words):
        if w[:1].isupper() or w.lower().startswith(("al-", "el-", "bin", "ibn")):
            tail.insert(0, w)
        else:
            break
    return " ".join(tail[-3:]) if tail else name


def _role_after(ent: SpacySpan) -> str | None:
    """A title in apposition after the name: 'Alexander Lavrentyev, the president's special envoy on Syria'."""
    for child in ent.root.children:
        if child.dep_ == "appos" and child.i > ent.end - 1 and child.ent_type_ != "PERSON":
            words = [t for t in child.subtree if not t.is_punct]
            text = ent.doc[words[0].i : words[-1].i + 1].text if words else ""
            text = re.sub(r"^(?:the|a|an)\s+", "", text, flags=re.I)
            return text if 0 < len(text.split()) <= 8 else None
    return None


def _role_window(ent: SpacySpan) -> str | None:
    """The capitalised title right before a name, when the parse missed it:
    'Presidential Special Envoy for Syria Alexander Lavrentiev'."""
    words: list[Token] = []
    i = ent.start - 1
    while i >= 0 and len(words) < 7:
        tok = ent.doc[i]
        if tok.is_title or (tok.lower_ in ("for", "of", "on") and words):
            words.insert(0, tok)
            i -= 1
            continue
        break
    while words and not words[0].is_title:
        words.pop(0)
    return ent.doc[words[0].i : ent.start].text if words else None


def _role_before(ent: SpacySpan) -> str | None:
    """The title written before a name in its noun phrase: 'Kremlin spokesman Dmitry Peskov'."""
    head = ent.root
    words = [t for t in head.subtree if t.i < ent.start and t.dep_ not in ("det", "punct", "case")]
    words = [t for t in words if not t.is_space]
    if not words or words[0].i < head.left_edge.i:
        return None
    role = ent.doc[words[0].i : ent.start].text.strip(" ,")
    role = re.sub(r"^(?:the|a|an)\s+", "", role, flags=re.I)
    return role if role and len(role.split()) <= 6 and not any(c in role for c in '"“”(') else None


__all__ = ["Discourse", "Source", "clean_name", "noun_phrase"]
