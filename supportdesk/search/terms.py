"""The query language's terms (``status:open tag:billing "a phrase" -word``) parsed and
checked without SQLAlchemy: ``search.query`` applies them to a query and re-exports all of this;
a read path that must start quickly parses with the same code to know whether it understands a
query completely.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from supportdesk.core.errors import BadInput
from supportdesk.core.terms import PRIORITIES, STATUSES, utcnow

KEYS = (
    "status", "channel", "assignee", "tag", "priority", "customer", "sla", "created",
    "updated", "group", "id", "is", "kind", "has", "due", "lang",
)  # fmt: skip


class QueryError(BadInput):
    """A query that cannot be understood; the message points at the bad term.

    ``term`` is the offending term as typed and ``start``/``end`` its character span in the
    query (-1 when unknown), so the console can underline it.
    """

    def __init__(self, message: str, *, term: str = "", start: int = -1, end: int = -1):
        super().__init__(message)
        self.term = term
        self.start = start
        self.end = end

    def pointer(self, query: str) -> str:
        """The query with a caret line under the bad term (for multi-line displays)."""
        if self.start < 0:
            return query
        width = max(self.end - self.start, 1)
        return f"{query}\n{' ' * self.start}{'^' * width}"


@dataclass
class Term:
    key: str  # "" for a free word, "phrase" for a quoted phrase
    value: str
    negated: bool = False
    raw: str = ""
    start: int = -1  # span of the term in the query text
    end: int = -1


@dataclass
class Query:
    terms: list[Term] = field(default_factory=list)

    @property
    def words(self) -> list[Term]:
        return [t for t in self.terms if t.key in ("", "phrase")]


_TOKEN = re.compile(r'\s*(-?)(?:(\w+):)?("(?:[^"\\]|\\.)*"?|\S+)')


def parse(text: str) -> Query:
    q = Query()
    text = (text or "").strip()
    pos = 0
    negate_next = False  # "NOT term" is "-term"
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            break
        pos = m.end()
        neg, key, val = m.group(1) == "-", (m.group(2) or "").lower(), m.group(3)
        raw = m.group(0).strip()
        t0, t1 = m.start(1), m.end()
        if not neg and not key and val == "NOT":
            if negate_next or pos >= len(text.rstrip()):
                raise QueryError("NOT must be followed by a term", term=raw, start=t0, end=t1)
            negate_next = True
            continue
        if negate_next:
            neg, negate_next = not neg, False
        if val.startswith('"'):
            if len(val) < 2 or not val.endswith('"'):
                raise QueryError(
                    f"the phrase {raw!r} is missing its closing quote", term=raw, start=t0, end=t1
                )
            val = val[1:-1].replace('\\"', '"')
            if key:
                q.terms.append(Term(key, val, neg, raw, t0, t1))
            elif val.strip():
                q.terms.append(Term("phrase", val, neg, raw, t0, t1))
            continue
        if key and key not in KEYS:
            close = difflib.get_close_matches(key, KEYS, n=1, cutoff=0.75)
            if close and not val.startswith("/"):
                raise QueryError(
                    f"unknown term {raw!r}: did you mean {close[0]}:?", term=raw, start=t0, end=t1
                )
            # "http://x" or "time:12" in free text: keep it as words when not a known key
            q.terms.append(Term("", f"{key}:{val}", neg, raw, t0, t1))
            continue
        if key and not val:
            raise QueryError(f"the term {raw!r} has no value", term=raw, start=t0, end=t1)
        if not key and val == "-":
            continue
        q.terms.append(Term(key, val, neg, raw, t0, t1))
    for t in q.terms:
        try:
            _validate(t)
        except QueryError as exc:
            raise QueryError(str(exc), term=t.raw, start=t.start, end=t.end) from None
    return q


_REL = re.compile(r"^(\d+)\s*(m|h|d|w)$")
MAX_MINUTES = 100 * 366 * 1440  # durations longer than a hundred years are a mistake
_CMP = re.compile(r"^(>=|<=|>|<|=)?(.*)$")


def _duration(text: str, term: Term) -> timedelta:
    m = _REL.match(text.strip().lower())
    if not m:
        raise QueryError(f"in {term.raw!r}: {text!r} is not a duration such as 30m, 2h or 3d")
    n, unit = int(m.group(1)), m.group(2)
    minutes = n * {"m": 1, "h": 60, "d": 1440, "w": 10080}[unit]
    if minutes > MAX_MINUTES:
        raise QueryError(f"in {term.raw!r}: {text!r} is longer than a hundred years")
    return (
        timedelta(minutes=n)
        if unit == "m"
        else timedelta(hours=n)
        if unit == "h"
        else (timedelta(days=n) if unit == "d" else timedelta(weeks=n))
    )


def _validate(t: Term) -> None:
    vals = t.value.split(",") if t.key not in ("", "phrase", "customer") else [t.value]
    if t.key == "status":
        for v in vals:
            if v.lower() not in STATUSES:
                raise QueryError(f"in {t.raw!r}: status is one of {', '.join(STATUSES)}")
    elif t.key == "priority":
        op, v = _CMP.match(t.value).groups()  # type: ignore[union-attr]
        for p in v.split(",") if not op else [v]:
            if p.lower() not in PRIORITIES:
                raise QueryError(f"in {t.raw!r}: priority is one of {', '.join(PRIORITIES)}")
    elif t.key == "sla":
        v = t.value.lower()
        if v not in ("breached", "ok", "none", "paused"):
            op, rest = _CMP.match(v).groups()  # type: ignore[union-attr]
            if op not in ("<", "<="):
                raise QueryError(f"in {t.raw!r}: use sla:breached or sla:<2h")
            _duration(rest, t)
    elif t.key in ("created", "updated", "due"):
        op, rest = _CMP.match(t.value).groups()  # type: ignore[union-attr]
        _when(rest, t)
    elif t.key == "id":
        for v in vals:
            if not re.fullmatch(r"\d{1,12}(-\d{1,12})?", v):
                raise QueryError(f"in {t.raw!r}: id takes numbers such as id:12 or id:10-20")
    elif t.key == "is":
        for v in vals:
            if v.lower() not in (
                "open",
                "unassigned",
                "assigned",
                "snoozed",
                "mine",
                "closed",
                "spam",
            ):
                raise QueryError(
                    f"in {t.raw!r}: is: takes open, unassigned, assigned, mine, snoozed or closed"
                )
    elif t.key == "lang":
        for v in vals:
            if not re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})?|none", v):
                raise QueryError(f"in {t.raw!r}: lang takes a language code such as lang:ru")
    elif t.key == "has":
        for v in vals:
            if v.lower() not in ("attachment", "attachments", "csat", "notes"):
                raise QueryError(f"in {t.raw!r}: has: takes attachment, csat or notes")


def _when(text: str, term: Term) -> datetime:
    text = text.strip()
    m = _REL.match(text.lower())
    if m:
        return utcnow() - _duration(text, term)
    if text.lower() == "today":
        d = utcnow().date()
        return datetime(d.year, d.month, d.day, tzinfo=UTC)
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            return datetime(d.year, d.month, d.day, tzinfo=UTC)
        dt = datetime.fromisoformat(text)
        return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
    except ValueError:
        raise QueryError(
            f"in {term.raw!r}: {text!r} is not a date (2026-11-01) or an age (7d)"
        ) from None
