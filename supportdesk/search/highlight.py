"""Snippets for search hits: the densest run of matching words in a line, found by stemming only
the words that could match (a long mail is not stemmed word by word for one snippet)."""

from __future__ import annotations

import re

from supportdesk.store.stems import _TOKEN, MAX_INDEXED_CHARS, normalize, stem_tokens, tokens

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_SPACES = re.compile(r"\s+")


def _hit_indexes(toks: list[str], exact: set[str], prefixes: set[str]) -> list[int]:
    # stem only the tokens that could match (stems are prefixes of their words, give or take
    # a letter): a long mail is not stemmed word by word for one snippet
    heads = {x[:2] for x in exact | prefixes}
    cand = [i for i, t in enumerate(toks) if t[:2] in heads]
    hits = []
    for i, s in zip(cand, stem_tokens([toks[i] for i in cand]), strict=True):
        t = toks[i]
        if s in exact or any(s.startswith(p) or t.startswith(p) for p in prefixes):
            hits.append(i)
    return hits


def count_hits(text: str, exact: set[str], prefixes: set[str]) -> int:
    """How many words of ``text`` the query marks."""
    return len(_hit_indexes(tokens(text[:MAX_INDEXED_CHARS]), exact, prefixes))


def highlight(
    text: str, exact: set[str], prefixes: set[str], *, width: int = 160
) -> tuple[str, list[tuple[int, int]], int]:
    """A one-line snippet of ``text`` around the densest run of matching words.

    Returns (snippet, [(start, end) of each highlighted word in the snippet], number of hits).
    Control characters and line breaks become spaces; the snippet is safe to print.
    """
    text = (text or "")[:MAX_INDEXED_CHARS]
    spans = [(m.start(), m.end()) for m in _TOKEN.finditer(text)]
    toks = [normalize(text[a:b]) for a, b in spans]
    hits = _hit_indexes(toks, exact, prefixes)
    if not hits:
        start, end = 0, min(len(text), width)
    else:
        best, best_n = hits[0], 0
        for j, i in enumerate(hits[:200]):
            limit = spans[i][0] + width
            n = sum(1 for k in hits[j : j + 200] if spans[k][1] <= limit)
            if n > best_n:
                best, best_n = i, n
        start = max(0, spans[best][0] - width // 4)
        # do not cut a word in half at the start
        while start > 0 and text[start - 1].isalnum() and start > spans[best][0] - width // 2:
            start -= 1
        end = min(len(text), start + width)
        while end < len(text) and text[end - 1].isalnum() and text[end : end + 1].isalnum():
            end += 1
            if end - start > width + 30:
                break
    marks = [spans[i] for i in hits if spans[i][0] >= start and spans[i][1] <= end]
    # collapse whitespace, keeping the marks' offsets in step
    out: list[str] = []
    pos_map: dict[int, int] = {}
    n_out = 0
    prev_space = True
    for i in range(start, end + 1):
        pos_map[i] = n_out
        if i == end:
            break
        ch = _CONTROL.sub(" ", text[i])
        if ch.isspace():
            if prev_space:
                continue
            ch = " "
            prev_space = True
        else:
            prev_space = False
        out.append(ch)
        n_out += 1
    snippet = "".join(out)
    lead = "…" if start > 0 else ""
    tail = "…" if end < len(text) else ""
    shift = len(lead)
    result = [(pos_map[a] + shift, pos_map[b] + shift) for a, b in marks]
    body = snippet.rstrip()
    return lead + body + tail, result, len(hits)
