"""English for Chinese data products, made when a product is written: the
title and summary cut into words by the longest match against the lexicon
(the glossary of government terms over CC-CEDICT), each word given its
English. A word-by-word machine translation, stored in its own fields and
marked as such; what it is for is that English queries find Chinese products.
No CKAN import: the schema validator, the index and the bench call it."""
from __future__ import annotations

import re
from dataclasses import dataclass

from ckanext.shanghai.translation.dictionary import CEDICT_VERSION, Lexicon, lexicon

__all__ = ["Translation", "translate", "translate_product", "segment", "ENGINE",
           "TITLE_FIELD", "NOTES_FIELD", "MARK_FIELD", "SEARCH_FIELD"]

# The dataset fields (schemas/presets.yaml) and the Solr-only search field.
TITLE_FIELD = "title_en"
NOTES_FIELD = "notes_en"
MARK_FIELD = "translation_en"
SEARCH_FIELD = "text_en"

ENGINE = f"machine: glossary + {CEDICT_VERSION}"

# Summaries longer than this are translated up to here: the index needs the
# words, and a page shows the start.
MAX_NOTES_CHARS = 2000

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_FULL_WIDTH = str.maketrans({
    "，": ",", "。": ".", "、": ",", "；": ";", "：": ":", "！": "!", "？": "?",
    "（": "(", "）": ")", "【": "[", "】": "]", "《": "\"", "》": "\"", "“": "\"",
    "”": "\"", "‘": "'", "’": "'", "\u3000": " ",
})
_SPACES = re.compile(r"\s+")
_SPACE_BEFORE_PUNCTUATION = re.compile(r"\s+([,.;:!?)\]])")
_SPACE_AFTER_OPENING = re.compile(r"([(\[])\s+")
_TITLE_NOISE = re.compile(r"\b(?:the|of|a|an)\s+(?=\b(?:the|of|a|an)\b)")


@dataclass(frozen=True)
class Translation:
    """A text's English and the English words a search should know it by."""

    english: str
    search_terms: tuple[str, ...]


def segment(text: str, words: Lexicon | None = None) -> list[str]:
    """A run of Chinese characters cut into the lexicon's words: the longest
    match from the right (better than from the left for Chinese compounds),
    unknown characters alone."""
    words = words or lexicon()
    pieces: list[str] = []
    end = len(text)
    while end > 0:
        for start in range(max(0, end - words.longest), end):
            candidate = text[start:end]
            if start == end - 1 or words.knows(candidate):
                pieces.append(candidate)
                end = start
                break
    pieces.reverse()
    return pieces


def translate(text: str | None, words: Lexicon | None = None) -> Translation:
    """A Chinese text in English, word by word; Latin words, numbers and
    punctuation kept as they are."""
    if not text:
        return Translation("", ())
    words = words or lexicon()
    out: list[str] = []
    terms: list[str] = []
    position = 0
    text = text.translate(_FULL_WIDTH)
    for run in _HAN.finditer(text):
        out.append(text[position:run.start()])
        for word in segment(run.group(), words):
            english = words.english(word)
            if not english:
                continue
            out.append(f" {english} ")
            terms.extend(words.search_terms(word))
        position = run.end()
    out.append(text[position:])
    english = _SPACES.sub(" ", "".join(out)).strip()
    english = _SPACE_BEFORE_PUNCTUATION.sub(r"\1", english)
    english = _SPACE_AFTER_OPENING.sub(r"\1", english)
    english = _TITLE_NOISE.sub("", english)
    return Translation(english, tuple(dict.fromkeys(terms)))


def _sentence_case(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def translate_product(title: str | None, notes: str | None) -> dict[str, object]:
    """The machine-translated fields of a product, as stored, and its English
    search terms (for the index only)."""
    words = lexicon()
    title_en = translate(title, words)
    notes_en = translate((notes or "")[:MAX_NOTES_CHARS], words)
    return {
        TITLE_FIELD: _sentence_case(title_en.english),
        NOTES_FIELD: _sentence_case(notes_en.english),
        MARK_FIELD: ENGINE,
        SEARCH_FIELD: list(dict.fromkeys(title_en.search_terms + notes_en.search_terms)),
    }
