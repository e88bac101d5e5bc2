"""Attributed statements of one article: quotations and reported speech, each with its cue and speaker.

The parse runs on a *masked* copy of the article: every quotation's content is replaced by one
placeholder word of the same length. Offsets stay aligned, spaCy no longer splits sentences inside
quotations, and a quotation becomes one token whose place in the tree leads to its cue
(`"…," Peskov told reporters` → the placeholder hangs under "told", whose subject is the speaker).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from spacy.tokens import Doc, Token
from spacy.tokens import Span as SpacySpan

from ..records import Article, Extraction, MentionKind, QuoteMention, Span, Speaker, SpeakerKind
from ..speakers import SpeakerRegistry, surname
from .layout import Block, split_blocks
from .quotes import Quotation, find_quotations

# Verbs that introduce what someone said. "report"/"cite" are the media's verbs: their subject is an
# outlet, so the statement belongs to whoever the complement names.
CUE_VERBS = {
    "say",
    "tell",
    "add",
    "stress",
    "emphasize",
    "emphasise",
    "note",
    "highlight",
    "describe",
    "call",
    "urge",
    "state",
    "affirm",
    "reaffirm",
    "declare",
    "write",
    "insist",
    "warn",
    "claim",
    "announce",
    "explain",
    "argue",
    "assert",
    "deny",
    "dismiss",
    "confirm",
    "mention",
    "voice",
    "express",
    "underscore",
    "reiterate",
    "acknowledge",
    "admit",
    "suggest",
    "pledge",
    "promise",
    "vow",
    "frame",
    "accuse",
    "demand",
    "welcome",
    "praise",
    "criticize",
    "criticise",
    "condemn",
    "reject",
    "ask",
    "predict",
    "report",
    "cite",
    "read",
    "propose",
    "signal",
    "hail",
}
MEDIA_VERBS = {"report", "cite"}
# A bare "the statement read": the statement's issuer is the speaker.
STATEMENT_NOUNS = {"statement", "readout", "communique", "release", "declaration", "letter", "post"}
# Complements that carry the content of reported speech, by cue.
_CONTENT_DEPS = {"ccomp"}
_OBJECT_CUES = {
    "describe",
    "emphasize",
    "emphasise",
    "stress",
    "highlight",
    "underscore",
    "voice",
    "express",
    "reaffirm",
    "affirm",
    "deny",
    "dismiss",
    "urge",
    "call",
    "demand",
    "welcome",
    "reject",
    "condemn",
    "frame",
    "propose",
    "pledge",
    "reiterate",
    "acknowledge",
    "praise",
    "criticize",
    "criticise",
    "accuse",
    "signal",
    "hail",
}
_PRONOUNS_PERSON = {"he", "she", "him", "her"}
_PRONOUNS_ORG = {"it", "they", "we"}
_NAME_WORD = r"(?:[A-Z][\w'’-]*|(?:al|el|ad|as|ash|an|ar)-[A-Z][\w'’-]*|bin|ibn|abu|de|van|von)"
_ALIAS_DECLARATION = re.compile(
    rf"(?P<name>[A-Z][\w'’-]+(?:\s+{_NAME_WORD}){{1,4}})\s*,?\s*\(?\s*(?:also|better|more commonly|widely)\s+"
    rf"known\s+as\s+(?:the\s+)?(?P<alias>[A-Z][\w'’-]+(?:\s+{_NAME_WORD}){{0,4}})"
)
from ..nlp import MASK_CHAR  # noqa: E402


@dataclass(slots=True)
class _Found:
    """A cue and the speaker it names, before it becomes a mention."""

    cue: Token
    cue_text: str
    speaker: Speaker
    speaker_mention: str
    confidence: float
    via_statement: bool = False


@dataclass(slots=True)
class _Context:
    """Discourse state while reading an article front to back."""

    article: Article
    doc: Doc
    registry: SpeakerRegistry
    quote_tokens: dict[int, Quotation]  # token index of a masked quotation → the quotation
    names: list[str] = field(default_factory=list)  # full person names in order of appearance
    last_person: Speaker | None = None
    last_group: Speaker | None = None  # last non-person speaker subject, media included
    last_issuer: Speaker | None = None  # last institution that issued a statement
    touched: dict[str, Speaker] = field(default_factory=dict)


def extract_article(article: Article, registry: SpeakerRegistry, nlp: object) -> Extraction:
    text = article.text
    blocks = split_blocks(text, article.title)
    quotes = find_quotations(text, blocks)
    masked = _mask(text, blocks, quotes)
    doc: Doc = nlp(masked)  # type: ignore[operator]
    quote_tokens = {}
    for q in quotes:
        span = doc.char_span(q.content_start, q.content_end, alignment_mode="expand")
        if span is not None and len(span):
            quote_tokens[span[0].i] = q
    ctx = _Context(article, doc, registry, quote_tokens)
    _learn_names(ctx, text)
    mentions = _read(ctx, blocks)
    return Extraction(article, tuple(mentions), tuple(ctx.touched[k] for k in sorted(ctx.touched)))


# -- preparation ---------------------------------------------------------------------------------


def _mask(text: str, blocks: list[Block], quotes: list[Quotation]) -> str:
    chars = list(text)
    for b in blocks:
        if not b.body:  # boilerplate is parsed as blank space: nobody speaks in a caption
            for i in range(b.start, b.end):
                if chars[i] != "\n":
                    chars[i] = " "
    for q in quotes:
        # A sentence end inside the quotation stays visible: it ends the journalist's sentence too.
        end = q.content_end
        while end > q.content_start + 1 and chars[end - 1] in ".!?…":
            end -= 1
        for i in range(q.content_start, end):
            chars[i] = MASK_CHAR
    return "".join(chars)


def _learn_names(ctx: _Context, text: str) -> None:
    """The article's full person names (for short names) and the aliases its text declares.

    People enter the registry when they speak; a declared alias is registered at once, so that the
    alias never becomes a second person.
    """
    # Declared aliases are read from the raw text: captions teach names too ("also known as").
    for m in _ALIAS_DECLARATION.finditer(text):
        name, alias = _clean_name(m.group("name")), _clean_name(m.group("alias"))
        full = _longest_person_suffix(name)
        speaker = ctx.registry.person(full)
        ctx.registry.merge_alias(speaker, alias)
        ctx.touched[speaker.id] = speaker
        if full not in ctx.names:
            ctx.names.append(full)
    for ent in ctx.doc.ents:
        name = _clean_name(ent.text)
        if ent.label_ == "PERSON" and len(name.split()) >= 2 and MASK_CHAR * 4 not in name:
            if name not in ctx.names:
                ctx.names.append(name)
            # A titled person is a public figure worth knowing even before they speak; a bare
            # PERSON entity is too often a mislabelled group ("Hayat Tahrir al-Sham") to register.
            known = ctx.registry.lookup(name)
            if known is not None and known.kind is not SpeakerKind.PERSON:
                continue  # NER calls "Hayat Tahrir al-Sham" a person; the registry knows better
            roles = (_role_before(ent), _role_after(ent), _role_window(ent))
            role = next((r for r in roles if r and _TITLE_WORDS & set(r.lower().split())), None)
            if role:
                speaker = ctx.registry.person(name, role)
                ctx.touched[speaker.id] = speaker


def _clean_name(name: str) -> str:
    name = re.sub(r"['’]s$", "", name.strip())
    return re.sub(r"\s+", " ", name).strip(" ,.")


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


_TITLE_WORDS = {
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
    "commander",
    "premier",
    "chancellor",
    "senator",
    "governor",
    "mayor",
}


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


# -- reading ---------------------------------------------------------------------------------------


def _read(ctx: _Context, blocks: list[Block]) -> list[QuoteMention]:
    body = [b for b in blocks if b.body]
    mentions: list[QuoteMention] = []
    previous_quote: tuple[QuoteMention, int, Quotation] | None = None  # mention, block index, last quotation
    for sent in ctx.doc.sents:
        block_index = _block_of(body, sent.start_char)
        if block_index is None:
            continue
        sentence_mentions: list[QuoteMention] = []
        covered: set[int] = set()
        # 1. quotations of this sentence
        groups: dict[int, tuple[_Found, list[Quotation]]] = {}
        for tok in sent:
            q = ctx.quote_tokens.get(tok.i)
            if q is None:
                continue
            found = _cue_for(ctx, tok)
            if found is None:
                if previous_quote is not None and _continues(previous_quote, block_index, q, ctx):
                    mention = _extend(previous_quote[0], q, ctx.article.text)
                    mentions[mentions.index(previous_quote[0])] = mention
                    previous_quote = (mention, block_index, q)
                continue
            groups.setdefault(found.cue.i, (found, []))[1].append(q)
            covered.add(found.cue.i)
        for found, qs in groups.values():
            kind = _quote_kind(ctx, qs[0], found)
            mention = _mention(ctx, found, kind, [_span(ctx.article.text, q) for q in qs], qs[-1].balanced)
            sentence_mentions.append(mention)
            previous_quote = (mention, block_index, qs[-1])
        # 2. reported speech without quotation marks
        for tok in sent:
            if tok.i in covered or not _is_cue(tok) or tok.i in ctx.quote_tokens:
                continue
            content = _reported_content(ctx, tok)
            if content is None:
                continue
            found = _speaker_of_cue(ctx, tok)
            if found is None:
                continue
            sentence_mentions.append(_mention(ctx, found, MentionKind.INDIRECT, [content], True))
        _update_salience(ctx, sent)
        mentions.extend(sorted(sentence_mentions, key=lambda m: m.start))
    return mentions


def _block_of(body: list[Block], offset: int) -> int | None:
    for i, b in enumerate(body):
        if b.start <= offset < b.end:
            return i
    return None


def _continues(prev: tuple[QuoteMention, int, Quotation], block_index: int, q: Quotation, ctx: _Context) -> bool:
    """`"…," he said. "…"` and a quote that goes on in the next paragraph continue the earlier mention."""
    mention, prev_block, prev_q = prev
    if mention.kind is not MentionKind.DIRECT or q.open <= prev_q.close:
        return False
    text = ctx.article.text
    if block_index == prev_block:
        between = text[prev_q.close : q.open]
        # Only the cue sentence may stand between the two parts: `"…," he said. "…"`.
        return (
            len(between) < 120
            and between.count(".") <= 1
            and mention.cue.split()[0] in between
            and between.rstrip()[-1:] in (".", ":", ",")
        )
    starts_block = not text[ctx.article.text.rfind("\n", 0, q.open) + 1 : q.open].strip()
    return block_index == prev_block + 1 and starts_block


def _extend(mention: QuoteMention, q: Quotation, text: str) -> QuoteMention:
    return QuoteMention(
        article_id=mention.article_id,
        kind=mention.kind,
        spans=(*mention.spans, _span(text, q)),
        cue=mention.cue,
        speaker_mention=mention.speaker_mention,
        speaker_id=mention.speaker_id,
        confidence=mention.confidence,
    )


def _span(text: str, q: Quotation) -> Span:
    return Span(q.content_start, q.content_end, text[q.content_start : q.content_end])


def _mention(ctx: _Context, found: _Found, kind: MentionKind, spans: list[Span], balanced: bool) -> QuoteMention:
    ctx.touched[found.speaker.id] = found.speaker
    if found.speaker.kind is SpeakerKind.PERSON:
        ctx.last_person = found.speaker
    elif (
        found.via_statement
        or "statement" in found.cue_text
        or any(w in STATEMENT_NOUNS for w in found.speaker_mention.lower().split())
    ):
        ctx.last_issuer = found.speaker
    confidence = found.confidence * (1.0 if balanced else 0.7)
    if kind is MentionKind.INDIRECT:
        confidence *= 0.85
    return QuoteMention(
        article_id=ctx.article.id,
        kind=kind,
        spans=tuple(spans),
        cue=found.cue_text,
        speaker_mention=found.speaker_mention,
        speaker_id=found.speaker.id,
        confidence=round(confidence, 3),
    )


def _quote_kind(ctx: _Context, q: Quotation, found: _Found) -> MentionKind:
    """Direct when the quotation stands as the sentence's own clause: it opens the sentence or follows
    a colon or a comma after its cue, and starts with a capital letter."""
    text = ctx.article.text
    content = text[q.content_start : q.content_end]
    line_start = text.rfind("\n", 0, q.open) + 1
    before = text[line_start : q.open].rstrip()
    opens_sentence = not before or before[-1] in ".:!?…" or (before[-1] == "," and found.cue.idx < q.open)
    return MentionKind.DIRECT if opens_sentence and content[:1].isupper() else MentionKind.PARTIAL


# -- cues and speakers -----------------------------------------------------------------------------


def _is_cue(tok: Token) -> bool:
    return tok.lemma_.lower() in CUE_VERBS and tok.pos_ in ("VERB", "AUX")


def _cue_for(ctx: _Context, quote_tok: Token) -> _Found | None:
    """Climb from a quotation to the nearest cue that names a speaker; else 'according to X'."""
    node = quote_tok
    for _ in range(8):
        if node is not quote_tok and _is_cue(node):
            found = _speaker_of_cue(ctx, node)
            if found is not None:
                return found
        according = _according_to(ctx, node)
        if according is not None:
            return according
        if node.head is node:
            break
        node = node.head
    for tok in quote_tok.sent:
        according = _according_to(ctx, tok)
        if according is not None:
            return according
    return None


def _according_to(ctx: _Context, tok: Token) -> _Found | None:
    for child in tok.children:
        if child.lower_ == "according":
            for to in child.children:
                if to.lower_ == "to":
                    for pobj in to.children:
                        if pobj.dep_ == "pobj":
                            return _resolve(ctx, pobj, child, "according to")
    return None


def _subject(cue: Token, quotes: dict[int, Quotation]) -> Token | None:
    """The cue's subject; a quotation parsed as the subject ("“…,” Peskov added") is the content, not it."""
    node = cue
    for _ in range(4):
        for child in node.children:
            if child.dep_ in ("nsubj", "nsubjpass") and child.i not in quotes:
                return child
        for child in node.children:  # "was told by X" / "cited by X"
            if child.dep_ == "agent":
                for pobj in child.children:
                    if pobj.dep_ == "pobj":
                        return pobj
        if node.dep_ in ("conj", "xcomp", "advcl", "acl", "dobj", "pcomp", "relcl") and node.head is not node:
            node = node.head
            if node.dep_ == "relcl":  # "…, who also serves as …": the relative's antecedent
                return node.head
            continue
        break
    return None


def _speaker_of_cue(ctx: _Context, cue: Token) -> _Found | None:
    subj = _subject(cue, ctx.quote_tokens)
    if subj is None:
        return None
    found = _resolve(ctx, subj, cue, _cue_text(cue))
    if found is None:
        return None
    if found.speaker.kind is SpeakerKind.MEDIA or cue.lemma_ in MEDIA_VERBS:
        # "Sana said Damascus also wants …": the outlet reports; the complement's subject speaks.
        for child in cue.children:
            if child.dep_ == "ccomp":
                inner = _subject(child, ctx.quote_tokens)
                if inner is not None and inner.i != subj.i:
                    nested = _resolve(ctx, inner, cue, _cue_text(cue))
                    if nested is not None and nested.speaker.kind is not SpeakerKind.MEDIA:
                        nested.confidence *= 0.8
                        return nested
        return None
    return found


def _cue_text(cue: Token) -> str:
    """The cue as written: 'told reporters', 'said in a statement', 'called on', 'according to'."""
    pieces: list[SpacySpan | Token] = [cue]
    for child in cue.children:
        if (child.dep_ in ("dobj", "dative") and child.lower_ in ("reporters", "journalists")) or child.dep_ == "prt":
            pieces.append(child)
        elif child.dep_ == "prep" and child.lower_ in ("in", "on"):
            pobj = [g for g in child.children if g.dep_ == "pobj"]
            if any(g.lemma_ in STATEMENT_NOUNS for g in pobj):
                pieces.append(cue.doc[child.i : child.right_edge.i + 1])
            elif cue.lemma_ == "call" and child.lower_ == "on" and not any(g.ent_type_ == "DATE" for g in pobj):
                pieces.append(child)
    pieces.sort(key=lambda p: p.i if isinstance(p, Token) else p.start)
    return " ".join(p.text for p in pieces)


def _noun_phrase(tok: Token) -> SpacySpan:
    """The subject's own words: its left modifiers and compounds, no relative clause or apposition."""
    left = tok
    for child in tok.lefts:
        if child.dep_ in ("det", "amod", "compound", "poss", "nmod", "nummod", "advmod", "case", "punct"):
            left = child.left_edge if child.left_edge.i < left.i else child
            break
    start = min(left.i, tok.i)
    while (start < tok.i and tok.doc[start].dep_ in ("punct", "cc")) or tok.doc[start].is_space:
        start += 1
    return tok.doc[start : tok.i + 1]


def _resolve(ctx: _Context, subj: Token, cue: Token, cue_text: str) -> _Found | None:
    reg = ctx.registry
    low = subj.lower_
    if low in _PRONOUNS_PERSON:
        return _found(cue, cue_text, ctx.last_person, subj.text, 0.8) if ctx.last_person else None
    if low in _PRONOUNS_ORG:
        target = ctx.last_group if low != "we" else None
        return _found(cue, cue_text, target, subj.text, 0.75) if target else None
    if low == "who" and subj.dep_.startswith("nsubj"):
        return None
    for child in subj.children:  # "Syria's interim leader, Ahmed al-Sharaa": the apposition names them
        if child.dep_ == "appos" and child.text[:1].isupper():
            found = _resolve(ctx, child, cue, cue_text)
            if found is not None and found.speaker.kind is SpeakerKind.PERSON:
                return found
    np = _noun_phrase(subj)
    np_text = _clean_name(np.text)
    # People: a PERSON entity inside the subject's phrase.
    for ent in ctx.doc.ents:
        if ent.label_ == "PERSON" and np.start <= ent.start and ent.end <= np.end + 1:
            speaker = _person(ctx, _clean_name(ent.text))
            if speaker is not None:
                role = _role_before(ent)
                if role and not speaker.role:
                    speaker.role = role
                return _found(cue, cue_text, speaker, np_text, 0.95)
    # Institutions and titles, by alias (longest phrase first, then its head words).
    words = np_text.split()
    for k in range(len(words)):
        candidate = " ".join(words[k:])
        speaker = reg.lookup(candidate)
        if speaker is not None:
            if speaker.kind is SpeakerKind.PERSON and len(words) > 1 and k == len(words) - 1:
                pass  # a bare surname inside a longer phrase is handled below
            via_statement = subj.lemma_ in STATEMENT_NOUNS
            return _found(cue, cue_text, speaker, np_text, 0.85 if k == 0 else 0.75, via_statement)
    if subj.lemma_ in STATEMENT_NOUNS and ctx.last_issuer is not None:
        return _found(cue, cue_text, ctx.last_issuer, np_text, 0.7, via=True)
    if len(words) == 1 and np_text[:1].isupper():  # a bare surname ("Sharaa" is often tagged NOUN)
        speaker = _person(ctx, np_text)
        if speaker is not None:
            return _found(cue, cue_text, speaker, np_text, 0.85)
        if subj.ent_type_ == "PERSON":  # a name we cannot complete: still a person, with less confidence
            return _found(cue, cue_text, ctx.registry.person(np_text), np_text, 0.6)
    for ent in ctx.doc.ents:
        if ent.label_ in ("ORG", "GPE", "NORP") and np.start <= ent.start and ent.end <= np.end:
            speaker = reg.lookup(ent.text)
            if speaker is None and ent.label_ == "ORG" and ent.root.i == subj.i:
                speaker = reg.organisation(_clean_name(ent.text))
            if speaker is not None:
                return _found(cue, cue_text, speaker, np_text, 0.7)
    return None


def _found(
    cue: Token, cue_text: str, speaker: Speaker | None, mention: str, conf: float, via: bool = False
) -> _Found | None:
    if speaker is None:
        return None
    return _Found(cue, cue_text, speaker, mention, conf, via)


def _person(ctx: _Context, name: str) -> Speaker | None:
    """A person's name as written → the canonical speaker, resolving short names within the article."""
    if len(name.split()) >= 2:
        return ctx.registry.person(name)
    key = surname(name)
    # The earliest, longest full name of this article that ends with this surname.
    for full in sorted(ctx.names, key=lambda n: -len(n)):
        if surname(full) == key:
            return ctx.registry.person(full)
    found = ctx.registry.lookup(name)
    if found is not None and found.kind is SpeakerKind.PERSON:
        return found
    return ctx.registry.find_by_surname(name)


def _update_salience(ctx: _Context, sent: SpacySpan) -> None:
    """Who a later 'he' or 'it' points to: the last person subject, the last institution that spoke."""
    if any(t.lemma_ in MEDIA_VERBS for t in sent):
        # "…, the Russian news agency RIA Novosti reported." A later "It noted" is the agency, whatever the parse.
        for ent in sent.ents:
            outlet = ctx.registry.lookup(ent.text)
            if outlet is not None and outlet.kind is SpeakerKind.MEDIA:
                ctx.last_group = outlet
    for tok in sent:
        if not tok.dep_.startswith("nsubj") or tok.i in ctx.quote_tokens:
            continue
        if tok.lower_ in _PRONOUNS_PERSON | _PRONOUNS_ORG:
            continue
        head_is_cue = _is_cue(tok.head)
        np = _noun_phrase(tok)
        person = next(
            (e for e in ctx.doc.ents if e.label_ == "PERSON" and np.start <= e.start and e.end <= np.end + 1),
            None,
        )
        name = person.text if person is not None else (tok.text if tok.text[:1].isupper() else "")
        speaker = _person(ctx, _clean_name(name)) if name else None
        if speaker is not None and speaker.kind is SpeakerKind.PERSON:
            ctx.last_person = speaker
            continue
        if head_is_cue or tok.head.lemma_ in ("issue", "report"):
            speaker = ctx.registry.lookup(_clean_name(np.text))
            if speaker is None:
                for ent in ctx.doc.ents:
                    if np.start <= ent.start and ent.end <= np.end and ent.label_ in ("ORG", "GPE", "NORP"):
                        speaker = ctx.registry.lookup(ent.text)
            if speaker is not None and speaker.kind is not SpeakerKind.PERSON:
                ctx.last_group = speaker
                statement = any(g.lemma_ in STATEMENT_NOUNS for c in tok.head.children for g in (c, *c.children))
                if statement and speaker.kind is SpeakerKind.ORGANISATION:
                    ctx.last_issuer = speaker


def _reported_content(ctx: _Context, cue: Token) -> Span | None:
    """The content clause of reported speech: 'said (that) …', 'described X as Y', 'emphasized the need …'."""
    lemma = cue.lemma_.lower()
    if lemma in MEDIA_VERBS or lemma == "read":
        return None
    parts: list[Token] = [c for c in cue.children if c.dep_ in _CONTENT_DEPS]
    if not parts and lemma in _OBJECT_CUES:
        parts = [c for c in cue.children if c.dep_ in ("dobj", "xcomp")]
        if lemma in ("describe", "frame"):
            parts += [c for c in cue.children if c.dep_ == "prep" and c.lower_ == "as"]
    if not parts:
        return None
    tokens = sorted({t.i for p in parts for t in p.subtree})
    if any(i in ctx.quote_tokens for i in tokens):
        return None  # the quotation is the mention
    doc = ctx.doc
    start, end = tokens[0], tokens[-1]
    while start <= end and (doc[start].dep_ in ("mark", "punct") or doc[start].is_space):
        start += 1
    while end >= start and (doc[end].is_punct or doc[end].is_space):
        end -= 1
    if end - start + 1 < 3:
        return None
    span = doc[start : end + 1]
    if any(t.is_sent_start for t in list(span)[1:]) and span.text.count("\n") > 0:
        return None
    return Span(span.start_char, span.end_char, ctx.article.text[span.start_char : span.end_char])
