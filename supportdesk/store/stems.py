"""Text as the search index stores it: normalized tokens replaced by their Snowball stems.

Lower-case, ё folded to е, split into letter/digit tokens, each token replaced by its stem
(Russian for Cyrillic tokens, English otherwise). The documents and the queries go through the
same functions, so принтер finds принтера and printer finds printers.

No SQLAlchemy here: the import's parser processes stem the text they parse.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import Any

MAX_INDEXED_CHARS = 200_000  # per column: a huge mail is indexed by its first 200k characters
_CACHE_LIMIT = 200_000  # distinct tokens remembered per thread (support mail repeats its words)

_TOKEN = re.compile(r"[^\W_]+")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_LATIN = re.compile(r"[a-z]")
_local = threading.local()  # Stemmer objects are not thread-safe: one set per thread


def _stemmers() -> tuple[Any, Any]:
    st = getattr(_local, "stemmers", None)
    if st is None:
        import Stemmer

        st = (Stemmer.Stemmer("russian"), Stemmer.Stemmer("english"))
        _local.stemmers = st
    return st


def _cache() -> dict[str, str]:
    c: dict[str, str] | None = getattr(_local, "cache", None)
    if c is None:
        c = _local.cache = {}
    return c


def normalize(token: str) -> str:
    """Lower-case, ё -> е."""
    return token.lower().replace("ё", "е")


def tokens(text: str) -> list[str]:
    """The normalized letter/digit tokens of ``text``.

    The text is normalized once, as a whole: normalizing its tokens again changed nothing
    (``str.lower`` is idempotent on every code point's lower-case form, and no capital
    sigma is left for the final-sigma rule; tests/search/test_stems_tokens.py checks it
    against the per-token form), and was a tenth of a parser process's stemming time.
    """
    return _TOKEN.findall(normalize(text))


def stem_tokens(toks: Sequence[str]) -> list[str]:
    """Each normalized token replaced by its stem (Russian or English by script)."""
    ru, en = _stemmers()
    out = list(toks)
    ru_i = [i for i, t in enumerate(out) if _CYRILLIC.search(t)]
    en_i = [i for i, t in enumerate(out) if not _CYRILLIC.search(t) and _LATIN.search(t)]
    if ru_i:
        for i, s in zip(ru_i, ru.stemWords([out[i] for i in ru_i]), strict=True):
            out[i] = s
    if en_i:
        for i, s in zip(en_i, en.stemWords([out[i] for i in en_i]), strict=True):
            out[i] = s
    return out


def stem_text(text: str | None) -> str:
    """The indexed form of ``text``: its stems separated by spaces.

    A token's stem depends on the token alone, so stems are remembered per token.
    """
    if not text:
        return ""
    toks = tokens(text[:MAX_INDEXED_CHARS])
    cache = _cache()
    try:
        return " ".join([cache[t] for t in toks])
    except KeyError:
        pass
    missing = list(dict.fromkeys(t for t in toks if t not in cache))
    if len(cache) + len(missing) > _CACHE_LIMIT:
        cache.clear()
        missing = list(dict.fromkeys(toks))
    cache.update(zip(missing, stem_tokens(missing), strict=True))
    return " ".join([cache[t] for t in toks])
