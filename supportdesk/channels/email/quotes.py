"""Split an e-mail body into the new text and the quoted history / signature.

Nothing is thrown away: every line ends up either in ``text`` or in ``quoted_text``. The split
is a heuristic that knows the usual reply formats (``>`` quoting, "On ... wrote:", "... пишет:",
Outlook "-----Original Message-----" and "From:/Sent:" blocks, forwarded-message banners) and
the ``-- `` signature delimiter.
"""

from __future__ import annotations

import re

__all__ = ["split_quoted"]

# Banner lines after which everything is history.
_BANNER_RE = re.compile(
    r"""^\s*(?:
        -{2,}\s*(?:original\s+message|forwarded\s+message|
                 исходное\s+сообщение|пересылаемое\s+сообщение|
                 перенаправленное\s+сообщение|начало\s+переадресованного\s+сообщения|
                 ursprüngliche\s+nachricht|weitergeleitete\s+nachricht|
                 message\s+d'origine|message\s+transféré)\s*-{2,}
      | begin\s+forwarded\s+message\s*:
      | начало\s+переадресованного\s+сообщения\s*:
    )\s*$""",
    re.IGNORECASE | re.VERBOSE,
)

# Attribution line: "On Mon, 1 Jan 2024, John <j@x> wrote:", "1 янв. 2024 г., Иван пишет:".
_ATTRIBUTION_RE = re.compile(
    r"""(?:\bwrote|\bwrites|\bпишет|\bнаписал(?:\(а\)|а)?|\bschrieb|\ba\s+écrit|\bescribió
        |\bha\s+scritto|\bschreef)\s*:\s*$""",
    re.IGNORECASE | re.VERBOSE,
)
# Date and address, then a colon: Yandex "02.06.2025, 10:00, "Имя" <a@b.ru>:", Gmail in Russian
# "Пн, 2 июн. 2025 г. в 10:00, Имя <a@b.ru>:", mail.ru "..., 10:00 +03:00 от Имя <a@b.ru>:".
_DATED_ADDR_RE = re.compile(r"\d{1,2}:\d{2}.*<?[^<>@\s]+@[^<>\s]+>?\s*:\s*$")

# Outlook header block: "From: ..." followed by "Sent:"/"Date:" and "To:"/"Subject:".
_OUTLOOK_FROM_RE = re.compile(r"^\s*\**(?:from|от|von|de)\s*:\**\s*\S", re.IGNORECASE)
_OUTLOOK_NEXT_RE = re.compile(
    r"^\s*\**(?:sent|date|to|subject|cc|отправлено|дата|кому|тема|копия|gesendet|an|betreff"
    r"|envoyé|objet|à)\s*:",
    re.IGNORECASE,
)
_UNDERSCORES_RE = re.compile(r"^\s*_{10,}\s*$")
_SIGNATURE_RE = re.compile(r"^-- ?$")


def _is_quoted(line: str) -> bool:
    return line.lstrip(" ").startswith(">")


def _is_attribution(lines: list[str], i: int) -> int:
    """Number of lines (1 or 2) forming an attribution starting at ``i``; 0 if none."""
    line = lines[i]
    if len(line) > 300 or not line.strip():
        return 0
    if line.rstrip().endswith(":") and (
        _ATTRIBUTION_RE.search(line) or _DATED_ADDR_RE.search(line)
    ):
        return 1
    # Gmail wraps long attributions: "On ..., John Doe <\njohn@x.com> wrote:"
    if i + 1 < len(lines) and len(lines[i + 1]) < 200 and lines[i + 1].rstrip().endswith(":"):
        joined = line.rstrip() + " " + lines[i + 1].strip()
        if (_ATTRIBUTION_RE.search(joined) or _DATED_ADDR_RE.search(joined)) and re.match(
            r"^\s*(?:On|Le|Am|El|Il|Op|\d|[А-ЯЁ][а-яё]{1,10},)", line
        ):
            return 2
    return 0


def _is_outlook_block(lines: list[str], i: int) -> bool:
    if not _OUTLOOK_FROM_RE.match(lines[i]):
        return False
    following = 0
    for line in lines[i + 1 : i + 6]:
        if not line.strip():
            continue
        if _OUTLOOK_NEXT_RE.match(line):
            following += 1
            if following >= 2:
                return True
        else:
            # wrapped long "From:" value lines are allowed before the next field
            continue
    return False


def _skip_quote_block(lines: list[str], j: int) -> int:
    """Index just after the run of quoted (and blank) lines starting at ``j``."""
    n = len(lines)
    last = j
    while j < n and (not lines[j].strip() or _is_quoted(lines[j])):
        j += 1
        if _is_quoted(lines[j - 1]):
            last = j
    return last


def _find_history_start(lines: list[str]) -> int:
    """Index of the first line of quoted history, or ``len(lines)`` when there is none."""
    n = len(lines)
    i = 0
    while i < n:
        line = lines[i]
        if ("--" in line or line[:1].isalpha()) and _BANNER_RE.match(line):
            return i
        if _UNDERSCORES_RE.match(line) and i + 1 < n and _is_outlook_block(lines, i + 1):
            return i
        if _is_outlook_block(lines, i):
            return i
        span = _is_attribution(lines, i)
        if span:
            j = i + span
            while j < n and not lines[j].strip():
                j += 1
            if j >= n or _is_quoted(lines[j]):
                end = _skip_quote_block(lines, j)
                rest = [ln for ln in lines[end:] if ln.strip()]
                if not rest or _SIGNATURE_RE.match(rest[0]):
                    return i
                # bottom posting / inline replies: the quote stays with the text around it
                i = end
                continue
            # "wrote:" followed by unquoted history (some clients add no ">"): trust it only
            # when the line carries a date or an address, not in "my boss wrote:" prose.
            attribution = " ".join(lines[i : i + span])
            if _ATTRIBUTION_RE.search(attribution) and re.search(r"\d|@", attribution):
                return i
            i += span
            continue
        i += 1
    return n


def split_quoted(body: str) -> tuple[str, str]:
    """Split ``body`` into ``(text, quoted_text)``.

    ``text`` is what the author wrote in this message; ``quoted_text`` holds the signature and
    the quoted history. If the whole body would be quoted, everything stays in ``text``.
    """
    if not body:
        return "", ""
    lines = body.split("\n")
    cut = _find_history_start(lines)
    # A trailing block of ">" lines with no attribution is history too.
    if cut == len(lines):
        k = len(lines)
        while k > 0 and (not lines[k - 1].strip() or _is_quoted(lines[k - 1])):
            k -= 1
        if k < len(lines) and any(_is_quoted(ln) for ln in lines[k:]):
            cut = k
    # The signature delimiter before the history starts the folded part.
    for k in range(cut - 1, -1, -1):
        if _SIGNATURE_RE.match(lines[k]):
            cut = k
            break
    text = "\n".join(lines[:cut]).strip("\n")
    quoted = "\n".join(lines[cut:]).strip("\n")
    if not text.strip():
        return body.strip("\n"), ""
    return text.rstrip(), quoted
