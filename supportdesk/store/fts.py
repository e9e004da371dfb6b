"""The full-text query builder: search terms stemmed as the index is (``store.stems``) and
rendered to SQLite FTS5 or PostgreSQL tsquery syntax from tokens that hold only letters and digits,
so nothing a person types reaches the match syntax unquoted; and the index's document-key layout.

Free of SQLAlchemy (``store.search``, which runs the index, re-exports all of it): a read path
that must start quickly can build the same match expression as the full path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from supportdesk.store.stems import _TOKEN, normalize, stem_tokens

KIND_TICKET = 1  # ticket subject
KIND_MESSAGE = 2  # message subject, text and attachment names
KIND_CUSTOMER = 3  # customer name, company, notes, identities
KIND_KB = 4  # knowledge-base article
KIND_SHIFT = 48
REF_MASK = (1 << KIND_SHIFT) - 1


def doc_key(kind: int, ref_id: int) -> int:
    return (kind << KIND_SHIFT) | ref_id


def ref_from_key(key: int) -> int:
    return key & REF_MASK


TABLE = "search_doc"
MAX_TERMS = 64  # tokens in one query: a pasted page is refused with a clear message

# columns: title (subject, name, article title), body (text), extra (attachment names, addresses)
SQLITE_WEIGHTS = (4.0, 1.0, 2.0)


class SearchSyntaxError(ValueError):
    """A query the index cannot run; the message is one sentence for the user."""


@dataclass
class Term:
    """One search term: a word (maybe ending in ``*``) or a quoted phrase, maybe negated."""

    stems: list[str]
    prefix: bool = False  # the last stem is a prefix
    negated: bool = False

    @property
    def empty(self) -> bool:
        return not self.stems


@dataclass
class Parsed:
    terms: list[Term] = field(default_factory=list)

    @property
    def positive(self) -> list[Term]:
        return [t for t in self.terms if not t.negated and not t.empty]

    @property
    def negative(self) -> list[Term]:
        return [t for t in self.terms if t.negated and not t.empty]

    def all_stems(self) -> tuple[set[str], set[str]]:
        """(exact stems, prefixes) of the positive terms: what highlighting marks."""
        exact: set[str] = set()
        prefixes: set[str] = set()
        for t in self.positive:
            for i, s in enumerate(t.stems):
                if t.prefix and i == len(t.stems) - 1:
                    prefixes.add(s)
                else:
                    exact.add(s)
        return exact, prefixes


def make_term(value: str, *, phrase: bool = False, negated: bool = False) -> Term:
    """A term from what a person typed: a word like ``принтер``, ``прин*``, ``foo-bar`` or a
    phrase. Punctuation separates tokens; a word of several tokens is searched as a phrase."""
    value = (value or "").replace("\x00", " ")
    matches = list(_TOKEN.finditer(normalize(value)))
    toks = [m.group() for m in matches]
    prefix = False
    if matches and not phrase:
        end = matches[-1].end()
        prefix = value[end : end + 1] == "*"
    elif matches and phrase:
        prefix = value.rstrip().endswith("*") and value.rstrip()[-2:-1].isalnum()
    stems = stem_tokens(toks)
    if prefix:
        # a prefix is matched as typed (normalized): its stem may be shorter, never longer
        stems[-1] = min(stems[-1], toks[-1], key=len)
    return Term(stems, prefix=prefix, negated=negated)


def check_size(parsed: Parsed) -> None:
    n = sum(len(t.stems) for t in parsed.terms)
    if n > MAX_TERMS:
        raise SearchSyntaxError(
            f"the search has {n} words; use at most {MAX_TERMS} (search for a shorter phrase)"
        )


def _q(stem: str) -> str:
    return '"' + stem.replace('"', '""') + '"'


def fts5_term(t: Term) -> str:
    if len(t.stems) == 1:
        return _q(t.stems[0]) + ("*" if t.prefix else "")
    return '"' + " ".join(s.replace('"', '""') for s in t.stems) + '"' + ("*" if t.prefix else "")


def tsquery_term(t: Term) -> str:
    parts = ["'" + s.replace("'", "''").replace("\\", "") + "'" for s in t.stems]
    if t.prefix:
        parts[-1] += ":*"
    return "(" + " <-> ".join(parts) + ")"


def render(terms: Sequence[Term], dialect: str, *, any_of: bool = False) -> str:
    """The backend's match expression: positive terms ANDed (or ORed), negated ones excluded."""
    pos = [t for t in terms if not t.negated and not t.empty]
    neg = [t for t in terms if t.negated and not t.empty]
    if not pos:
        raise SearchSyntaxError("a search needs at least one word to look for")
    if dialect == "postgresql":
        expr = (" | " if any_of else " & ").join(tsquery_term(t) for t in pos)
        if neg:
            expr = "(" + expr + ")" + "".join(" & !" + tsquery_term(t) for t in neg)
        return expr
    expr = (" OR " if any_of else " AND ").join(fts5_term(t) for t in pos)
    if neg:
        expr = "(" + expr + ")" + "".join(" NOT " + fts5_term(t) for t in neg)
    return expr
