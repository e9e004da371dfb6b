"""Decoding mail text whose charset is missing or wrong: declared names mapped to the codecs
that really match them, and mislabelled Russian (cp1251, koi8-r) repaired."""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable

# --------------------------------------------------------------------------------------------
# Charsets
# --------------------------------------------------------------------------------------------

# Declared name (lower-cased) -> Python codecs to try in order. Supersets first: mail clients
# label cp949 text "ks_c_5601-1987", cp932 text "shift_jis", gb18030 text "gb2312" and so on.
_CHARSET_OVERRIDES: dict[str, tuple[str, ...]] = {
    "ks_c_5601-1987": ("cp949",),
    "ks_c_5601": ("cp949",),
    "ks_c_5601_1987": ("cp949",),
    "ksc5601": ("cp949",),
    "euc-kr": ("cp949",),
    "euc_kr": ("cp949",),
    "x-windows-949": ("cp949",),
    "shift_jis": ("cp932", "shift_jis_2004"),
    "shift-jis": ("cp932", "shift_jis_2004"),
    "sjis": ("cp932", "shift_jis_2004"),
    "x-sjis": ("cp932", "shift_jis_2004"),
    "windows-31j": ("cp932",),
    "iso-2022-jp": ("iso2022_jp", "iso2022_jp_ext", "iso2022_jp_2", "iso2022_jp_3"),
    "iso-2022-jp-2": ("iso2022_jp_2", "iso2022_jp_3"),
    "euc-jp": ("euc_jp", "euc_jis_2004"),
    "gb2312": ("gb18030",),
    "gbk": ("gb18030",),
    "x-gbk": ("gb18030",),
    "cp936": ("gb18030",),
    "big5": ("big5hkscs",),
    "iso-8859-8-i": ("iso8859_8",),
    "iso-8859-6-i": ("iso8859_6",),
    "x-mac-cyrillic": ("mac_cyrillic",),
    "x-mac-roman": ("mac_roman",),
    "windows-874": ("cp874",),
    "tis-620": ("cp874",),
    "utf8": ("utf-8",),
    "unicode-1-1-utf-7": ("utf-7",),
    "x-user-defined": (),
    "unknown-8bit": (),
    "x-unknown": (),
    "unknown": (),
    "default": (),
    "none": (),
}

# Labels that are very often wrong in Russian mail: decode, then check for mojibake.
_LATIN_LIKE = frozenset({"ascii", "latin-1", "iso8859-1", "cp1252", "iso8859-15"})
_STATEFUL_7BIT = ("iso2022", "utf-7", "hz")
_CYRILLIC_SINGLE = ("cp1251", "koi8-r", "koi8-u")

_codec_cache: dict[str, tuple[str, ...]] = {}


def _codecs_for(declared: str | None) -> tuple[str, ...]:
    """Python codec names for a declared charset ('' / unknown -> empty tuple)."""
    if not declared:
        return ()
    key = declared.strip().strip("\"'").lower()
    cached = _codec_cache.get(key)
    if cached is not None:
        return cached
    names = _CHARSET_OVERRIDES.get(key)
    if names is None:
        names = ()
        try:
            info = codecs.lookup(key)
            # Only text codecs: "base64", "rot13", "zlib"... are codecs too.
            if getattr(info, "_is_text_encoding", True):
                names = (info.name,)
        except (LookupError, ValueError, TypeError):
            names = ()
    if len(_codec_cache) < 512:
        _codec_cache[key] = names
    return names


_HIGH_LATIN_RE = re.compile("[\u00c0-\u00ff\u0080-\u009f]")
# A whole word of high characters (not glued to ASCII letters like the "çã" of "Formação").
_HIGH_RUN_RE = re.compile(
    "(?<![A-Za-z])[\u00c0-\u00ff\u0080-\u009f\u00a3\u00a8\u00b3\u00b8]{2,}(?![A-Za-z])"
)
_CYR_LOWER_UPPER_RE = re.compile("[а-яё][А-ЯЁ]")
_NOT_CYR_LETTER_RE = re.compile("[^а-яёА-ЯЁ]+")
_NOT_CYR_LOWER_RE = re.compile("[^а-яё]+")
_CYR_WORD_RE = re.compile("[а-яёА-ЯЁ]{2,}")
_MIXED_WORD_RE = re.compile("[a-zA-Z][а-яёА-ЯЁ]|[а-яёА-ЯЁ][a-zA-Z]")


def _looks_mojibake(text: str) -> bool:
    """True when latin-1/cp1252-decoded text looks like misread cp1251/koi8-r/utf-8."""
    high = _HIGH_LATIN_RE.findall(text)
    if not high:
        return False
    in_runs = sum(len(m) for m in _HIGH_RUN_RE.findall(text))
    # Western accents sit alone between ASCII letters ("café"; "Größe" is a rare pair, and the
    # Cyrillic guess rejects it later); Cyrillic read as latin-1 comes in whole words.
    return in_runs >= 0.6 * len(high) and in_runs >= 2


def _cyrillic_badness(text: str) -> float:
    """Lower is better: lower->upper flips inside words are rare in real Russian text."""
    text = text[:4000]
    cyrillic = _NOT_CYR_LETTER_RE.sub("", text)
    if not cyrillic:
        return 1e9
    flips = len(_CYR_LOWER_UPPER_RE.findall(text))
    lower = len(_NOT_CYR_LOWER_RE.sub("", cyrillic))
    return flips / len(cyrillic) + (0.5 if lower * 2 < len(cyrillic) else 0.0)


_LOW_BYTES = bytes(range(0x80))
_CYR_LETTER_BYTES = bytes([0xA3, 0xA8, 0xB3, 0xB8, *range(0xC0, 0x100)])
_NOT_CYR_LETTER_BYTES = bytes(b for b in range(0x100) if b not in _CYR_LETTER_BYTES)
_CYR_BYTES_RUN_RE = re.compile(rb"[\xa3\xa8\xb3\xb8\xc0-\xff]{2,}")


def _guess_cyrillic(data: bytes) -> str | None:
    """cp1251 or koi8-r when ``data`` looks like single-byte Russian, else None."""
    high = len(data.translate(None, _LOW_BYTES))
    if not high:
        return None
    letterish = len(data.translate(None, _NOT_CYR_LETTER_BYTES))
    if letterish < 0.8 * high:
        return None
    # Words: runs of high bytes (Cyrillic letters) dominate, unlike Western accents.
    runs = sum(len(m) for m in _CYR_BYTES_RUN_RE.findall(data))
    if runs < 0.6 * high:
        return None
    best: tuple[float, str] | None = None
    for name in ("cp1251", "koi8_r"):
        try:
            text = data[:4000].decode(name)
        except UnicodeDecodeError:
            continue
        # "Formação" read as cp1251 gives "Formaзгo": Cyrillic glued to Latin inside words.
        if len(_MIXED_WORD_RE.findall(text)) * 2 > len(_CYR_WORD_RE.findall(text)):
            continue
        score = _cyrillic_badness(text)
        if best is None or score < best[0]:
            best = (score, name)
    return best[1] if best else None


def _strict(data: bytes, name: str) -> str | None:
    """Decode strictly; for cp1251/koi8-r also consider that the other one was meant."""
    try:
        text = data.decode(name)
    except (UnicodeDecodeError, LookupError):
        return None
    if name in _CYRILLIC_SINGLE:
        # koi8-r mail labelled cp1251 (and the other way round) happens.
        other = _guess_cyrillic(data)
        if other and other.replace("_", "-") != name:
            alt = data.decode(other, "replace")
            if _cyrillic_badness(alt) + 0.05 < _cyrillic_badness(text):
                return alt
    return text


def _repair(data: bytes, hints: Iterable[str]) -> str:
    """Decode non-UTF-8 bytes whose label is missing or wrong."""
    for hint in hints:
        for name in _codecs_for(hint):
            if name in _LATIN_LIKE or name == "utf-8":
                continue
            text = _strict(data, name)
            if text is not None:
                return text
    cyr = _guess_cyrillic(data)
    if cyr:
        return data.decode(cyr, "replace")
    text = _cp1252(data)
    if len(data) >= 64 and _looks_mojibake(text):
        import charset_normalizer  # noqa: PLC0415 - imported lazily, only when needed

        best = charset_normalizer.from_bytes(data).best()
        if best is not None and best.encoding:
            try:
                return data.decode(best.encoding, "replace")
            except LookupError:
                pass
    return text


def _cp1252(data: bytes) -> str:
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def decode_bytes(data: bytes, declared: str | None = None, hints: Iterable[str] = ()) -> str:
    """Decode ``data`` labelled ``declared``; repair a missing, unknown or wrong label.

    ``hints`` are other charsets seen in the same message (tried before detection).
    Never raises.
    """
    if not data:
        return ""
    names = _codecs_for(declared)
    if data.isascii():
        if names and names[0].startswith(_STATEFUL_7BIT):
            return _decode_first(data, names)
        return data.decode("ascii")
    if names and names[0] not in _LATIN_LIKE:
        for name in names:
            text = _strict(data, name)
            if text is not None:
                return text
        # The declared charset failed: another charset, or just a few bad bytes?
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        text = _decode_first(data, names)
        if text.count("\ufffd") * 50 <= len(text):
            return text
        return _repair(data, hints)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if names and names[0] != "ascii":
        text = data.decode("iso8859-15") if names[0] == "iso8859-15" else _cp1252(data)
        if not _looks_mojibake(text):
            return text
    return _repair(data, hints)


def _decode_first(data: bytes, names: tuple[str, ...]) -> str:
    for name in names:
        try:
            return data.decode(name)
        except (UnicodeDecodeError, LookupError):
            continue
    try:
        return data.decode(names[0], "replace")
    except LookupError:
        return _cp1252(data)
