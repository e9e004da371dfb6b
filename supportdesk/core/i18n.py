"""UI strings through gettext. English is the source language; Russian ships as a catalog.

The catalogs are the ``.po`` files under ``supportdesk/locale/<lang>/LC_MESSAGES/``; they are
compiled to ``.mo`` in memory when first used, so editing a ``.po`` needs no build step.
The language comes from config ``[desk] language`` or else from ``LANGUAGE``/``LC_ALL``/
``LC_MESSAGES``/``LANG``; anything without a catalog falls back to English.

Usage: ``from supportdesk.core.i18n import _`` then ``_("Unassigned")``. Strings that must be known
at import time (binding descriptions) are written plain and translated when a widget is built.
"""

from __future__ import annotations

import ast
import gettext
import io
import os
import struct
from functools import cache
from pathlib import Path

DOMAIN = "supportdesk"
LOCALE_DIR = Path(__file__).with_name("locale")
LANGUAGES = ("en", "ru")

_active: gettext.NullTranslations = gettext.NullTranslations()
_language = "en"


class CatalogError(Exception):
    """A .po catalog cannot be read. One sentence."""


def _unquote(line: str, path: Path, lineno: int) -> str:
    try:
        value = ast.literal_eval(line)
    except (ValueError, SyntaxError):
        raise CatalogError(f"{path}:{lineno}: a string must be in double quotes") from None
    if not isinstance(value, str):
        raise CatalogError(f"{path}:{lineno}: a string must be in double quotes")
    return value


def parse_po(path: Path) -> dict[str, str]:
    """Read a .po file into {msgid: msgstr}; plural forms join with NUL as in a .mo file."""
    entries: dict[str, str] = {}
    msgid: list[str] = []
    plural: list[str] = []
    strs: dict[int, list[str]] = {}
    target: list[str] | None = None
    fuzzy = False

    def flush() -> None:
        nonlocal msgid, plural, strs, fuzzy
        if strs and not fuzzy:
            key = "".join(msgid) + ("\0" + "".join(plural) if plural else "")
            value = "\0".join("".join(strs[i]) for i in sorted(strs))
            if value.replace("\0", "") or key == "":
                entries[key] = value
        msgid, plural, strs, fuzzy = [], [], {}, False

    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            if line.startswith("#,") and "fuzzy" in line:
                if strs:
                    flush()
                fuzzy = True
            continue
        if line.startswith("msgid_plural "):
            plural = [_unquote(line[13:], path, lineno)]
            target = plural
        elif line.startswith("msgid "):
            if strs:
                flush()
            msgid = [_unquote(line[6:], path, lineno)]
            target = msgid
        elif line.startswith("msgstr["):
            idx = int(line[7 : line.index("]")])
            strs[idx] = [_unquote(line[line.index("]") + 1 :].strip(), path, lineno)]
            target = strs[idx]
        elif line.startswith("msgstr "):
            strs[0] = [_unquote(line[7:], path, lineno)]
            target = strs[0]
        elif line.startswith('"') and target is not None:
            target.append(_unquote(line, path, lineno))
        else:
            raise CatalogError(f"{path}:{lineno}: cannot read {line[:40]!r}")
    if strs:
        flush()
    return entries


def compile_mo(entries: dict[str, str]) -> bytes:
    """The GNU .mo bytes for a catalog (the layout of CPython's Tools/i18n/msgfmt.py)."""
    keys = sorted(entries)
    ids = b""
    strs = b""
    offsets: list[tuple[int, int, int, int]] = []
    for k in keys:
        kb, vb = k.encode("utf-8"), entries[k].encode("utf-8")
        offsets.append((len(ids), len(kb), len(strs), len(vb)))
        ids += kb + b"\0"
        strs += vb + b"\0"
    n = len(keys)
    keystart = 7 * 4 + 16 * n
    valuestart = keystart + len(ids)
    koffsets: list[int] = []
    voffsets: list[int] = []
    for o1, l1, o2, l2 in offsets:
        koffsets += [l1, o1 + keystart]
        voffsets += [l2, o2 + valuestart]
    header = struct.pack("Iiiiiii", 0x950412DE, 0, n, 7 * 4, 7 * 4 + n * 8, 0, 0)
    return (
        header
        + struct.pack(f"{len(koffsets)}i", *koffsets)
        + struct.pack(f"{len(voffsets)}i", *voffsets)
        + ids
        + strs
    )


@cache
def translations(language: str) -> gettext.NullTranslations:
    """The compiled catalog of ``language`` (English: none needed)."""
    po = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    if language == "en" or not po.exists():
        return gettext.NullTranslations()
    return gettext.GNUTranslations(io.BytesIO(compile_mo(parse_po(po))))


def pick_language(configured: str | None = None, env: dict[str, str] | None = None) -> str:
    """The console language: config first, then the locale variables; English by default."""
    env = dict(os.environ) if env is None else env
    candidates = [configured or ""]
    for var in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        val = env.get(var, "")
        if val:
            candidates += val.split(":")
            break
    for cand in candidates:
        code = cand.strip().split(".")[0].split("_")[0].split("-")[0].lower()
        if code in LANGUAGES:
            return code
        if code in ("c", "posix"):
            return "en"
    return "en"


def set_language(language: str | None) -> str:
    """Make ``language`` (or the one picked from the environment) the active one; returns it."""
    global _active, _language
    _language = pick_language(language)
    _active = translations(_language)
    return _language


def language() -> str:
    return _language


def _(message: str) -> str:
    """Translate a UI string into the active language."""
    return _active.gettext(message) if message else message


def ngettext(singular: str, plural: str, n: int) -> str:
    return _active.ngettext(singular, plural, n)
