"""The speaker registry: canonical people and institutions, their roles and every name they go by.

Names are resolved in two steps. Within an article a short name ("Peskov", "Sharaa") points to the
earliest, longest full name of that article; across articles full names meet in this registry, where
spelling variants (Ahmed/Ahmad al-Sharaa, Lavrentyev/Lavrentiev) and names the text itself declares
("also known as", "better known as") are aliases of one speaker with one stable id.
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rapidfuzz import fuzz

from .records import Speaker, SpeakerKind

# Words that qualify an institution without changing which one it is.
_QUALIFIERS = {"new", "interim", "current", "de", "facto", "transitional", "official", "own"}
_DETERMINERS = {"the", "a", "an", "its", "their", "his", "her"}
# "Syria's leadership" and "the Syrian leadership" are one speaker.
_DEMONYMS = {
    "syria": "syrian",
    "russia": "russian",
    "ukraine": "ukrainian",
    "turkey": "turkish",
    "iran": "iranian",
    "israel": "israeli",
    "america": "american",
    "china": "chinese",
    "france": "french",
    "germany": "german",
    "britain": "british",
    "italy": "italian",
    "saudi arabia": "saudi",
    "us": "american",
    "u.s.": "american",
}
_NAME_PARTICLES = {"al", "el", "bin", "ibn", "abu", "von", "van", "de", "der", "la", "le"}


class RegistryError(ValueError):
    """The hand-kept speakers file is unusable."""


_DEMONYM_POSSESSIVE = re.compile(r"\b(" + "|".join(re.escape(c) for c in _DEMONYMS) + r")'s\b")


@functools.lru_cache(maxsize=65_536)
def normalise(name: str) -> str:
    """Lowercase, ASCII-folded, punctuation-light form used to compare names and aliases.

    Cached: every lookup in the registry normalises all of its aliases (13 ms of a one-sentence
    request before the cache).
    """
    text = unicodedata.normalize("NFKD", name)
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = text.replace("’", "'").replace("ʼ", "'").replace("‘", "'").lower()
    text = re.sub(r"[-‐–—_]", " ", text)
    text = re.sub(r"[^\w' .]", " ", text)
    text = re.sub(r"'s\b", "'s", text)
    text = _DEMONYM_POSSESSIVE.sub(lambda m: _DEMONYMS[m.group(1)], text)
    text = text.replace("'", "")
    words = [w.strip(".") for w in text.split()]
    words = [w for w in words if w]
    while words and words[0] in _DETERMINERS:
        words.pop(0)
    return " ".join(words)


def institution_key(name: str) -> str:
    """Like `normalise`, without qualifiers such as 'new' or 'interim'."""
    return " ".join(w for w in normalise(name).split() if w not in _QUALIFIERS)


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", normalise(name)).strip("-") or "speaker"


def surname(name: str) -> str:
    """The last name, without particles: 'Ahmed al-Sharaa' → 'sharaa'."""
    words = [w for w in normalise(name).split() if w not in _NAME_PARTICLES]
    return words[-1] if words else ""


def same_person(a: str, b: str) -> bool:
    """Two full names that are spellings of one name: same surname (allowing transliteration), same given name."""
    na, nb = normalise(a).split(), normalise(b).split()
    if len(na) < 2 or len(nb) < 2:
        return False
    if fuzz.ratio(surname(a), surname(b)) < 80:
        return False
    return fuzz.ratio(na[0], nb[0]) >= 80 and fuzz.ratio(" ".join(na), " ".join(nb)) >= 85


@dataclass(slots=True)
class AliasRecord:
    speaker_id: str
    alias: str
    origin: str  # "name" (a form seen in text), "text" (declared by the text), "file" (hand-kept)


class SpeakerRegistry:
    def __init__(self) -> None:
        self.speakers: dict[str, Speaker] = {}
        self.alias_origin: dict[tuple[str, str], str] = {}
        self._by_key: dict[str, str] = {}

    # -- building -----------------------------------------------------------------------------

    def add_speaker(self, speaker: Speaker) -> Speaker:
        existing = self.speakers.get(speaker.id)
        if existing is None:
            self.speakers[speaker.id] = speaker
            existing = speaker
            self.add_alias(speaker.id, speaker.name, "name")
        else:
            existing.role = existing.role or speaker.role
        for alias in list(speaker.aliases):
            self.add_alias(existing.id, alias, self.alias_origin.get((existing.id, alias), "name"))
        return existing

    def add_alias(self, speaker_id: str, alias: str, origin: str) -> None:
        alias = alias.strip()
        key = self._key(self.speakers[speaker_id], alias)
        if not key:
            return
        self.speakers[speaker_id].aliases.add(alias)
        self.alias_origin.setdefault((speaker_id, alias), origin)
        self._by_key.setdefault(key, speaker_id)

    @staticmethod
    def _key(speaker: Speaker, alias: str) -> str:
        return normalise(alias) if speaker.kind is SpeakerKind.PERSON else institution_key(alias)

    def aliases(self) -> list[AliasRecord]:
        return [
            AliasRecord(sid, alias, self.alias_origin.get((sid, alias), "name"))
            for sid, sp in sorted(self.speakers.items())
            for alias in sorted(sp.aliases)
        ]

    def load_file(self, path: Path) -> None:
        """Hand-kept additions: {"speakers": [{"id", "name", "kind", "role"?, "aliases"?: [...]}, ...]}."""
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise RegistryError(f"{path}: cannot be read ({exc})") from None
        except json.JSONDecodeError as exc:
            raise RegistryError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
        entries = raw.get("speakers") if isinstance(raw, dict) else None
        if not isinstance(entries, list):
            raise RegistryError(f"{path}: expected an object with a 'speakers' list")
        for i, entry in enumerate(entries):
            where = f"{path}: speakers[{i}]"
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                raise RegistryError(f"{where}: each speaker needs at least a 'name'")
            try:
                kind = SpeakerKind(entry.get("kind", "person"))
            except ValueError:
                raise RegistryError(f"{where}: 'kind' must be one of person, organisation, media") from None
            aliases = entry.get("aliases", [])
            if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
                raise RegistryError(f"{where}: 'aliases' must be a list of strings")
            sid = entry.get("id") or slug(entry["name"])
            speaker = self.add_speaker(Speaker(sid, entry["name"], kind, entry.get("role")))
            for alias in aliases:
                self.add_alias(speaker.id, alias, "file")

    # -- resolving ----------------------------------------------------------------------------

    def lookup(self, name: str) -> Speaker | None:
        """The speaker a name refers to, by exact alias (person or institution form)."""
        for key in (normalise(name), institution_key(name)):
            sid = self._by_key.get(key)
            if sid:
                return self.speakers[sid]
        return None

    def find_person(self, full_name: str) -> Speaker | None:
        found = self.lookup(full_name)
        if found is not None:
            return found
        for sp in self.speakers.values():
            if sp.kind is SpeakerKind.PERSON and any(same_person(full_name, a) for a in sp.aliases):
                return sp
        return None

    def find_by_surname(self, name: str) -> Speaker | None:
        """A bare surname, when exactly one known person carries it."""
        key = surname(name)
        hits = {
            sp.id
            for sp in self.speakers.values()
            if sp.kind is SpeakerKind.PERSON and any(surname(a) == key and len(a.split()) > 1 for a in sp.aliases)
        }
        return self.speakers[hits.pop()] if len(hits) == 1 else None

    def resolve_name(self, name: str) -> Speaker | None:
        """A name as written → a known speaker: whole name, then shorter tails ("Ukraine's foreign
        minister Andriy Sybiga" → "Andriy Sybiga"), then a person's spelling variant or bare surname."""
        words = name.split()
        for k in range(len(words)):
            found = self.lookup(" ".join(words[k:]))
            if found is not None:
                return found
        return self.find_person(name) or (self.find_by_surname(name) if len(words) == 1 else None)

    def person(self, full_name: str, role: str | None = None) -> Speaker:
        """The registered person with this name, or a new one (id from the first full name seen)."""
        found = self.find_person(full_name)
        if found is None:
            sid = slug(full_name)
            while sid in self.speakers:  # a namesake, not a spelling variant
                sid += "-2"
            found = self.add_speaker(Speaker(sid, full_name, SpeakerKind.PERSON, role))
        else:
            self.add_alias(found.id, full_name, "name")
            if role and not found.role:
                found.role = role
        return found

    def organisation(self, name: str, kind: SpeakerKind = SpeakerKind.ORGANISATION) -> Speaker:
        found = self.lookup(name)
        if found is None:
            found = self.add_speaker(Speaker(slug(institution_key(name)), name, kind))
        return found

    def merge_alias(self, speaker: Speaker, alias: str) -> None:
        """A name the text declares for a speaker ("also known as …")."""
        self.add_alias(speaker.id, alias, "text")

    def snapshot(self) -> list[Speaker]:
        return [self.speakers[k] for k in sorted(self.speakers)]

    @classmethod
    def from_speakers(cls, speakers: Iterable[Speaker], origins: dict[tuple[str, str], str]) -> SpeakerRegistry:
        reg = cls()
        for sp in speakers:
            reg.speakers[sp.id] = Speaker(sp.id, sp.name, sp.kind, sp.role, set())
        for sp in speakers:
            for alias in sorted(sp.aliases):
                reg.add_alias(sp.id, alias, origins.get((sp.id, alias), "name"))
        return reg
