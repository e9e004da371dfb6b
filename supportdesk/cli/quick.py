"""The read commands' quick path: `tickets list` (no query terms), `tickets show`, `status`,
`report` and `search` (words only, no filter terms) answered before typer, the config's pydantic models or SQLAlchemy are loaded, which is most of a
command's start-up (typer 0.29 alone builds a pydantic adapter per option).

Only a command line this module understands completely takes it: the global ``--home``/``--as``
and the command's own documented options, each at most once, with a valid value. Anything else
(a query term, ``--help``, ``--db``, a typo, a bad value) returns None and the full typer path
runs as before, with its own messages. The quick path also steps aside when the desk is not
certain (``runner.quick.open_quick``) or when reading fails before anything was printed.
What it prints comes from the same functions as the full commands (``cli.render``), over the
same SQL (``store.reads``); tests/tickets/test_quick_read.py compares the two byte for byte.

``SUPPORTDESK_QUICK=0`` turns it off (to compare, or to rule it out).
"""

from __future__ import annotations

import os
import sys
from datetime import date
from pathlib import Path
from typing import Any

ORDERS = ("hot", "newest", "updated")


def _globals(argv: list[str]) -> tuple[dict[str, str], list[str]] | None:
    """The global options (--home, --as) and the rest of the command line."""
    out: dict[str, str] = {}
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        name, eq, value = argv[i].partition("=")
        if name not in ("--home", "--as") or name in out:
            return None
        if not eq:
            if i + 1 >= len(argv):
                return None
            value = argv[i + 1]
            i += 1
        if not value or value.startswith("-"):
            return None
        out[name] = value
        i += 1
    return out, argv[i:]


def _options(args: list[str], flags: set[str], valued: dict[str, str]) -> dict[str, str] | None:
    """``args`` as options only: ``flags`` (no value) and ``valued`` (alias -> name, with a
    value as the next argument, ``--name=value`` or ``-nVALUE``); None for anything else."""
    out: dict[str, str] = {}
    i = 0
    while i < len(args):
        a = args[i]
        if a in flags:
            name, value = a, ""
        else:
            key, eq, value = a.partition("=")
            if key in valued and key.startswith("--") and eq:
                name = valued[key]
            elif a in valued:
                if i + 1 >= len(args):
                    return None
                name, value = valued[a], args[i + 1]
                i += 1
            elif a[:2] in valued and not a.startswith("--") and len(a) > 2:
                name, value = valued[a[:2]], a[2:]
            else:
                return None
        if name in out:
            return None
        out[name] = value
        i += 1
    return out


def _date(text: str) -> date | None:
    """A ``--since``/``--until`` value as ``reports.figures.parse_date`` reads it, else None."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        return None


SEARCH_FLAGS = ("--json", "--csv", "--newest")
SEARCH_VALUED = {"--limit": "--limit", "-n": "--limit", "--offset": "--offset", "--kind": "--kind",
                 "-k": "--kind"}  # fmt: skip


def _search(args: list[str]) -> dict[str, str] | None:
    """`search`'s words and options as typer reads them (``cli.options.QueryCommand``: ``-word``
    is ``NOT word``), in ``{"query": text, "--kind": "a,b", ...}``; None for anything else:
    ``--``, ``--help``, an option given twice, a value typer would refuse."""
    known = {*SEARCH_FLAGS, *SEARCH_VALUED, "--help"}
    out: dict[str, str] = {}
    words: list[str] = []
    kinds: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        name = value = None
        if a in SEARCH_FLAGS:
            name, value = a, ""
        elif a in SEARCH_VALUED:
            if i + 1 >= len(args) or args[i + 1].startswith("-"):
                return None  # typer's to read
            name, value = SEARCH_VALUED[a], args[i + 1]
            i += 1
        elif a.startswith("--"):
            key, eq, rest = a.partition("=")
            if not eq or key not in SEARCH_VALUED:
                return None  # "--", "--help", a typo
            name, value = SEARCH_VALUED[key], rest
        elif a[:2] in SEARCH_VALUED and len(a) > 2:
            name, value = SEARCH_VALUED[a[:2]], a[2:]
        elif (
            a.startswith("-") and len(a) > 1 and a not in known and (a[1].isalpha() or a[1] == '"')
        ):
            words += ["NOT", a[1:]]
        elif a.startswith("-") or not a:
            return None  # "-", "-5": typer's to read
        else:
            words.append(a)
        if name == "--kind":
            kinds.append(value or "")
        elif name is not None:
            if name in out:
                return None
            out[name] = value or ""
        i += 1
    if not words or ("--json" in out and "--csv" in out):
        return None
    for name, low in (("--limit", 1), ("--offset", 0)):
        if name in out:
            v = out[name]
            if not (v.isascii() and v.isdigit()) or not low <= int(v) <= (500 if low else 10**9):
                return None  # typer's message
    out["query"] = " ".join(words)
    if kinds:
        out["--kind"] = ",".join(kinds)
    return out


def parse(argv: list[str]) -> tuple[str, dict[str, str], dict[str, str]] | None:
    """(command, global options, command options) when the quick path can take ``argv``."""
    split = _globals(argv)
    if split is None:
        return None
    glob, rest = split
    if rest[:1] == ["status"]:
        opts = _options(rest[1:], {"--json"}, {})
        return None if opts is None else ("status", glob, opts)
    if rest[:2] == ["tickets", "list"]:
        opts = _options(
            rest[2:],
            {"--json", "--csv"},
            {"--limit": "--limit", "-n": "--limit", "--order": "--order"},
        )
        if opts is None or ("--json" in opts and "--csv" in opts):
            return None
        limit = opts.get("--limit", "100")
        if not (limit.isascii() and limit.isdigit()) or opts.get("--order", "hot") not in ORDERS:
            return None
        return "tickets list", glob, opts
    if rest[:1] == ["report"]:
        opts = _options(rest[1:], {"--json", "--csv"}, {"--since": "--since", "--until": "--until"})
        if opts is None or ("--json" in opts and "--csv" in opts):
            return None
        for name in ("--since", "--until"):
            if name in opts and _date(opts[name]) is None:
                return None  # the full path says why
        return "report", glob, opts
    if rest[:1] == ["search"]:
        opts = _search(rest[1:])
        return None if opts is None else ("search", glob, opts)
    if rest[:2] == ["tickets", "show"] and len(rest) >= 3:
        # the ticket number as typer's int reads it, ASCII digits only; 0 and numbers SQLite
        # cannot hold are the full path's (its message)
        number, opts = rest[2], _options(rest[3:], {"--json"}, {})
        if opts is None or not (number.isascii() and number.isdigit()):
            return None
        if not 0 < int(number) < 2**63:
            return None
        return "tickets show", glob, {"id": number, **opts}
    return None


def quick(argv: list[str]) -> int | None:
    """Run ``argv`` on the quick path and return the exit code, or None to take the full path."""
    env = os.environ
    if env.get("SUPPORTDESK_QUICK") == "0" or "SUPPORTDESK_DB" in env:
        return None
    if env.get("SUPPORTDESK_HOME") == "" or env.get("SUPPORTDESK_AGENT") == "":
        return None
    parsed = parse(argv)
    if parsed is None:
        return None
    command, glob, opts = parsed
    from supportdesk.runner.quick import open_quick

    home = Path(glob["--home"]) if "--home" in glob else None
    try:
        desk = open_quick(home, glob.get("--as"))
        if desk is None:
            return None
        try:
            doc: Any
            if command == "status":
                doc = desk.status()
            elif command == "tickets show":
                doc = desk.show(int(opts["id"]))  # NotFound: the full path says so
            elif command == "search":
                # filter terms, a bad query or kind: the full path's (None below)
                kinds = [k for k in opts.get("--kind", "").split(",") if k.strip()]
                doc = desk.search(
                    opts["query"],
                    kinds=kinds or None,
                    newest="--newest" in opts,
                    limit=int(opts.get("--limit", "20")),
                    offset=int(opts.get("--offset", "0")),
                )
            elif command == "report":
                # a period the full path refuses (BadInput) is its to refuse: None below
                since, until = opts.get("--since"), opts.get("--until")
                doc = desk.report(
                    _date(since) if since is not None else None,
                    _date(until) if until is not None else None,
                )
            else:
                doc = desk.queue(
                    order=opts.get("--order", "hot"), limit=int(opts.get("--limit", "100")) or None
                )
        finally:
            desk.close()
    except Exception:
        return None  # nothing printed yet: the full path says what went wrong
    from supportdesk.cli import output, render

    output.set_timezone(desk.config.timezone)
    try:
        if command == "status":
            render.print_status(
                doc,
                desk_name=desk.config.desk_name,
                home=desk.home,
                roles_note=desk.roles_note(),
                json_out="--json" in opts,
            )
        elif command == "tickets show":
            if "--json" in opts:
                output.print_json(doc)
            else:
                render.print_ticket(doc)
        elif command == "search":
            render.print_hits(doc, json_out="--json" in opts, csv_out="--csv" in opts)
        elif command == "report":
            if "--json" in opts:
                output.print_json(doc)
            elif "--csv" in opts:
                from supportdesk.reports.figures import flatten

                output.print_csv(flatten(doc), ["metric", "key", "value"])
            else:
                render.print_report(doc)
        else:
            render.print_queue(
                doc,
                json_out="--json" in opts,
                csv_out="--csv" in opts,
                limit=int(opts.get("--limit", "100")),
            )
    except BrokenPipeError:
        sys.stderr.close()  # as the full path: a reader that stopped reading is not an error
    return 0
