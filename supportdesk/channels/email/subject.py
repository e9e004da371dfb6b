"""Subjects: reply/forward prefixes and the ``[#N]`` ticket token (no store, no SQLAlchemy)."""

from __future__ import annotations

import re

# Re:, Fwd:, AW:, WG:, Ответ:, Отв:, Fw:, RE[2]:, Re^2: ... repeated
_PREFIX = re.compile(
    r"^\s*(?:(?:re|fwd?|aw|wg|sv|vs|tr|antw|ответ|отв|пересл|переслать|на)\s*(?:\[\d+\]|\^\d+|\(\d+\))?\s*[:：]\s*)+",
    re.IGNORECASE,
)
_TOKEN = re.compile(r"\[#(\d{1,12})\]")
_SPACE = re.compile(r"\s+")


def strip_prefixes(subject: str) -> str:
    return _PREFIX.sub("", subject or "").strip()


def ticket_token(subject: str) -> int | None:
    """The ``[#N]`` token of a subject, if any."""
    m = _TOKEN.search(subject or "")
    return int(m.group(1)) if m else None


def clean_subject(subject: str) -> str:
    """Subject without reply prefixes and without our token, for a new ticket's title."""
    s = _TOKEN.sub("", strip_prefixes(subject)).strip()
    return _SPACE.sub(" ", s)


def ticket_title(subject: str) -> str:
    """A new e-mail ticket's subject as stored."""
    return (clean_subject(subject) or "(no subject)")[:300]
