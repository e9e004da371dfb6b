"""Ticket IDs from a pipe: plain IDs, or the JSON that ``tickets list --json`` prints.

Accepted: IDs separated by whitespace or commas (``12 13,14``, ``#15``), a JSON array of IDs or
of objects with an ``id`` (``tickets list --json``), or JSON lines (one object or ID a line).
Anything else is a BadInput with one sentence saying what was wrong.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from supportdesk.desk.desk import BadInput

_SPLIT = re.compile(r"[\s,;]+")
_ID = re.compile(r"^#?(\d{1,12})$")


def _one(item: Any, where: str) -> int:
    if isinstance(item, bool):
        raise BadInput(f"{where} is true/false, not a ticket ID")
    if isinstance(item, int) and item > 0:
        return item
    if isinstance(item, str) and _ID.match(item.strip()):
        return int(_ID.match(item.strip()).group(1))  # type: ignore[union-attr]
    if isinstance(item, dict):
        if "id" not in item:
            raise BadInput(f'{where} is an object without an "id" field')
        return _one(item["id"], f'the "id" of {where}')
    shown = json.dumps(item, ensure_ascii=False)[:40]
    raise BadInput(f"{where} ({shown}) is not a ticket ID")


def _dedupe(ids: Iterable[int]) -> list[int]:
    return list(dict.fromkeys(ids))


def parse_ids(text: str) -> list[int]:
    """Ticket IDs in the order given, without repeats."""
    body = (text or "").strip().lstrip("\ufeff")
    if not body:
        raise BadInput("no ticket IDs were given on standard input")
    if body[0] == "[":
        try:
            doc = json.loads(body)
        except json.JSONDecodeError as exc:
            raise BadInput(
                f"standard input is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
            ) from None
        if not isinstance(doc, list):
            raise BadInput("standard input is JSON but not an array of tickets or IDs")
        return _dedupe(_one(x, f"item {i + 1} of the JSON array") for i, x in enumerate(doc))
    if body[0] == "{":
        out = []
        for n, line in enumerate(body.splitlines(), 1):
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BadInput(
                    f"line {n} of standard input is not a JSON object ({exc.msg})"
                ) from None
            out.append(_one(doc, f"line {n} of standard input"))
        return _dedupe(out)
    out = []
    for tok in _SPLIT.split(body):
        if not tok:
            continue
        m = _ID.match(tok)
        if not m:
            raise BadInput(
                f"{tok[:40]!r} on standard input is not a ticket ID (expected numbers, or tickets list --json)"
            )
        if int(m.group(1)) == 0:
            raise BadInput("0 on standard input is not a ticket ID")
        out.append(int(m.group(1)))
    return _dedupe(out)


def collect_ids(args: list[str], read_stdin: Any) -> list[int]:
    """IDs from command-line arguments, where ``-`` means "read standard input" (once)."""
    out: list[int] = []
    used_stdin = False
    for a in args:
        if a.strip() == "-":
            if used_stdin:
                continue
            used_stdin = True
            out.extend(parse_ids(read_stdin()))
            continue
        for tok in _SPLIT.split(a.strip()):
            if not tok:
                continue
            m = _ID.match(tok)
            if not m or int(m.group(1)) == 0:
                raise BadInput(f"{tok[:40]!r} is not a ticket ID")
            out.append(int(m.group(1)))
    if not out:
        raise BadInput("no ticket IDs were given")
    return _dedupe(out)
