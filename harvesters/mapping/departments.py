"""Department names: the pinyin slug a department's URL takes, and the
department schema its name implies (district government, bureau ...)."""
from __future__ import annotations

import hashlib
import re
import unicodedata

# --- departments ------------------------------------------------------------------

# pypinyin reads some place names by their everyday word (长 as in 市长,
# 行 as in 行走); a department slug should read as the place is called.
_PLACE_READINGS = {
    "长宁": "changning",
    "闵行": "minhang",
    "长江": "changjiang",
    "六安": "luan",
    "蚌埠": "bengbu",
    "丽水": "lishui",
    "番禺": "panyu",
}
_REGION = re.compile(r"^(?P<place>[^区县市省]{2,3}?)[市省]")
_DISTRICT = re.compile(r"^(?P<place>.{1,6}?)(?P<kind>新区|自治县|区|县)")
_SUFFIXES = {
    "人民政府办公室": "renmin-zhengfu-bangongshi",
    "人民政府办公厅": "renmin-zhengfu-bangongting",
    "人民政府": "renmin-zhengfu",
    "政府办公室": "zhengfu-bangongshi",
    "政府": "zhengfu",
    "委员会": "weiyuanhui",
    "办公室": "bangongshi",
    "办公厅": "bangongting",
    "中心": "zhongxin",
    "局": "ju",
    "委": "wei",
    "办": "ban",
}
_SUFFIX = re.compile("(" + "|".join(sorted(_SUFFIXES, key=len, reverse=True)) + ")$")
_DISTRICT_KINDS = {"新区": "xinqu", "自治县": "zizhixian", "区": "qu", "县": "xian"}
_PLACE_SPLIT = re.compile("(" + "|".join(_PLACE_READINGS) + ")")
SLUG_MAX_LENGTH = 60


def _pinyin(text: str) -> tuple[str, bool]:
    """Toneless pinyin of a text run together, and whether anything could
    not be spelled (rare characters, punctuation)."""
    from pypinyin import lazy_pinyin

    spelled, lossy = [], False
    for piece in _PLACE_SPLIT.split(text):
        if not piece:
            continue
        if piece in _PLACE_READINGS:
            spelled.append(_PLACE_READINGS[piece])
            continue
        for syllable in lazy_pinyin(piece):
            clean = re.sub(r"[^a-z0-9]", "", syllable.lower())
            lossy = lossy or clean != syllable.lower()
            spelled.append(clean)
    return "".join(spelled), lossy


def _part_words(part: str) -> tuple[list[str], bool]:
    words, lossy = [], False

    def spell(text: str) -> None:
        nonlocal lossy
        word, lost = _pinyin(text)
        lossy = lossy or lost
        if word:
            words.append(word)

    region = _REGION.match(part)
    if region:
        spell(region.group("place"))
        part = part[region.end():]
    district = _DISTRICT.match(part)
    if district:
        spell(district.group("place"))
        words.append(_DISTRICT_KINDS[district.group("kind")])
        part = part[district.end():]
    suffix = _SUFFIX.search(part)
    if suffix and suffix.start() > 0:
        spell(part[:suffix.start()])
        words.append(_SUFFIXES[suffix.group()])
    elif suffix:
        words.append(_SUFFIXES[suffix.group()])
    elif part:
        spell(part)
    return words, lossy


def department_slug(chinese_name: str) -> str:
    """A short, readable ASCII slug for a department's Chinese name, e.g.
    上海市公安局 -> ``shanghai-gongan-ju``, 上海市杨浦区人民政府 ->
    ``shanghai-yangpu-qu-renmin-zhengfu``.

    A pure function of the name: lower-case a-z, 0-9 and ``-``, at most 60
    characters. A 6-hex hash of the full name is appended when the slug would
    be longer (it is cut first) or when the name has characters the slug
    cannot spell, so such names stay apart. Names spelled the same in
    toneless pinyin would share a slug, and a pypinyin upgrade may respell a
    rare character: look departments up by their Chinese name, and use the
    slug only to name a new organisation.
    """
    name = unicodedata.normalize("NFKC", chinese_name or "").strip()
    if not name:
        raise ValueError("部门名称为空 / the department name is empty")
    parts = [part for part in re.split(r"[()]", name) if part.strip()]
    words, lossy = [], bool(re.search(r"[^\w()]", name))
    for part in parts:
        part_words, part_lossy = _part_words(part.strip())
        words.extend(part_words)
        lossy = lossy or part_lossy
    slug = "-".join(word for word in words if word)
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:6]
    if not slug:
        return f"dept-{digest}"
    if len(slug) > SLUG_MAX_LENGTH:
        return f"{slug[:SLUG_MAX_LENGTH - 7].rstrip('-')}-{digest}"
    if lossy:
        return f"{slug[:SLUG_MAX_LENGTH - 7].rstrip('-')}-{digest}"
    return slug


_DISTRICT_GOVERNMENT = re.compile(r"(区|县)(人民政府|政府)(办公室)?$")
_BUREAU_ENDING = re.compile(r"(局|委员会|办公室|办公厅|委|办)$")


def department_type_of(chinese_name: str) -> str:
    """The organisation schema's department_type for a department name, by
    rule: a district (or county) people's government or its office ->
    ``district-government``; a city's (上海市…) bureau, commission or office
    -> ``municipal-bureau``; anything else, including a district's own
    bureaus and central-government branches -> ``other``. Written for
    Shanghai's names; for other cities' names it is a best guess."""
    name = unicodedata.normalize("NFKC", chinese_name or "").strip()
    core = re.sub(r"\([^()]*\)$", "", name).strip()
    if _DISTRICT_GOVERNMENT.search(core):
        return "district-government"
    region = _REGION.match(core)
    if region:
        rest = core[region.end():]
        if not _DISTRICT.match(rest) and _BUREAU_ENDING.search(rest):
            return "municipal-bureau"
    return "other"
