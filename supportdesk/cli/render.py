"""What `tickets list`, `tickets show`, `status`, `report` and `search` print, shared by their typer
commands and the quick path (``cli.quick``), so both print the same bytes. No typer here: the quick
path loads this.

Long because: every read command the quick path answers prints through here, once.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from supportdesk.cli.output import (
    console,
    console_width,
    human_time,
    inert,
    limit_hint,
    print_csv,
    print_json,
    print_table,
)

LIST_COLUMNS = [
    ("id", "#"),
    ("channel", "Channel"),
    ("customer_name", "Customer"),
    ("subject", "Subject"),
    ("status", "Status"),
    ("priority", "Prio"),
    ("assignee", "Assignee"),
    ("tags", "Tags"),
    ("age", "Age"),
    ("due", "Due"),
]
CSV_COLUMNS = [
    "id",
    "subject",
    "status",
    "priority",
    "channel",
    "customer_id",
    "customer_name",
    "customer_addresses",
    "assignee",
    "group",
    "tags",
    "created_at",
    "updated_at",
    "due_at",
    "message_count",
]


def age(iso_text: str | None, now: datetime | None = None) -> str:
    if not iso_text:
        return ""
    now = now or datetime.now(UTC)
    secs = (now - datetime.fromisoformat(iso_text)).total_seconds()
    neg = secs < 0
    secs = abs(secs)
    if secs < 3600:
        s = f"{int(secs // 60)}m"
    elif secs < 86400:
        s = f"{int(secs // 3600)}h"
    else:
        s = f"{int(secs // 86400)}d"
    return ("in " + s) if neg else s


def flat(row: dict[str, Any]) -> dict[str, Any]:
    r = dict(row)
    cust = row.get("customer") or {}
    r["customer_id"] = cust.get("id")
    r["customer_name"] = cust.get("name") or (cust.get("identities") or [{}])[0].get("address", "")
    r["customer_addresses"] = [f"{i['kind']}:{i['address']}" for i in cust.get("identities", [])]
    r["age"] = age(row.get("created_at"))
    due = row.get("due_at")
    if due:
        secs = (datetime.fromisoformat(due) - datetime.now(UTC)).total_seconds()
        r["due"] = ("overdue " + age(due)) if secs < 0 else age(due)
    else:
        r["due"] = ""
    return r


def print_queue(rows: list[dict[str, Any]], *, json_out: bool, csv_out: bool, limit: int) -> None:
    """`tickets list`'s output: JSON, CSV or a table as wide as the terminal."""
    limit_hint(len(rows), limit, "--limit N shows more, --limit 0 shows all.")
    if json_out:
        print_json(rows)
    elif csv_out:
        print_csv([flat(r) for r in rows], CSV_COLUMNS)
    else:
        width = console_width()
        cols = (
            LIST_COLUMNS
            if width >= 120
            else [
                c
                for c in LIST_COLUMNS
                if c[0] not in (("tags", "age", "assignee") if width < 100 else ("tags",))
            ]
        )
        print_table(
            [flat(r) for r in rows],
            cols,
            empty="No tickets match.",
            max_width={
                "subject": max(16, min(48, width - 58)),
                "customer_name": 24 if width >= 100 else 14,
                "tags": 20,
                "due": 11,
            },
            min_width={
                "id": 3,
                "channel": 7,
                "status": 7,
                "priority": 6,
                "assignee": 6,
                "age": 3,
                "due": 5,
                "subject": 12,
                "customer_name": 8,
                "tags": 4,
            },
        )


def print_status(
    doc: dict[str, Any], *, desk_name: str, home: Path, roles_note: str, json_out: bool
) -> None:
    """`status`'s output (``doc`` with its "roles")."""
    if json_out:
        print_json(doc)
        return
    r = doc["runner"]
    ob = doc["outbox"]
    lines = [
        f"Desk: {inert(desk_name, one_line=True)}  home: {home}",
        inert(roles_note, one_line=True),
        "Runner: "
        + (
            f"{r['holder']} (pid {r['pid']} on {r['host']}), heartbeat {r['heartbeat_at']}"
            if r
            else "none running"
        ),
    ]
    if not doc["channels"]:
        lines.append("No channels configured (edit config.toml).")
    for ch in doc["channels"]:
        lines.append(
            f"{ch['state']:>12}  "
            + inert(f"{ch['name']} ({ch['type']})", one_line=True)
            + (
                inert(f"  last success {ch['last_success_at'][:19]}", one_line=True)
                if ch["last_success_at"]
                else ""
            )
        )
        if ch["last_error"]:
            lines.append(inert(f"              last error: {ch['last_error']}", one_line=True))
    lines.append(
        f"Outbox: {ob['queued']} queued, {ob['failed']} failed, "
        + (f"{ob['in_doubt']} in doubt (outbox list --state in_doubt), " if ob["in_doubt"] else "")
        + f"{ob['sent']} sent · Quarantine: {doc['quarantine']} · "
        f"Open tickets: {doc['tickets']['open']}"
    )
    from supportdesk.cli.plaintable import plain_lines

    text = plain_lines(lines)  # not a terminal: rich's bytes without loading rich
    if text is not None:
        sys.stdout.write(text)
        return
    from rich.text import Text

    con = console()
    for line in lines[:3]:
        con.print(line)
    at = 3
    for ch in doc["channels"]:
        style = {"ok": "green", "error": "red"}.get(ch["state"], "yellow")
        styled_line = Text()
        styled_line.append(f"{ch['state']:>12}  ", style=style)
        styled_line.append(inert(f"{ch['name']} ({ch['type']})", one_line=True), style="bold")
        if ch["last_success_at"]:
            styled_line.append(inert(f"  last success {ch['last_success_at'][:19]}", one_line=True))
        con.print(styled_line)
        at += 1
        if ch["last_error"]:
            con.print(Text(lines[at], style="dim"))
            at += 1
    for line in lines[at:]:
        con.print(line)


Piece = tuple[str, str | None]  # a text and its style (None: the line's own)
RULE: list[Piece] = []  # a rule across the width


def _ticket_lines(doc: dict[str, Any]) -> list[tuple[list[Piece], str | None]]:
    """`tickets show`'s lines: each its pieces and its style (``RULE``: a rule)."""
    out: list[tuple[list[Piece], str | None]] = []

    def line(text: str, style: str | None = None) -> None:
        out.append(([(text, None)], style))

    cust = doc["customer"]
    out.append(([(f"#{doc['id']} ", "bold"), (inert(doc["subject"], one_line=True), "bold")], None))
    meta = (
        f"{doc['status']} · {doc['priority']} · {doc['channel']} · assignee {doc['assignee'] or '-'}"
        f" · tags {', '.join(doc['tags']) or '-'}"
    )
    if doc.get("due_at"):
        meta += f" · due {human_time(doc['due_at'])}"
    if doc.get("first_response_queued"):
        meta += " · first response: reply queued, not delivered yet"
    line(inert(meta, one_line=True), "dim")
    idents = ", ".join(f"{i['kind']}:{i['address']}" for i in cust.get("identities", []))
    line(inert(f"Customer: {cust.get('name') or '-'} <{idents}>", one_line=True))
    if doc.get("participants"):
        line(inert("Also on the thread: " + ", ".join(doc["participants"]), one_line=True))
    if doc.get("history"):
        line("Other tickets of this customer:", "bold")
        for h in doc["history"][:10]:
            line(
                inert(
                    f"  #{h['id']} [{h['channel']}] {h['status']:7} {human_time(h['created_at'])[:10]}  {h['subject']}",
                    one_line=True,
                )
            )
    for m in doc["messages"]:
        out.append((RULE, "dim"))
        arrow = {"in": "←", "out": "→", "note": "✎ note"}.get(m["direction"], m["direction"])
        head = f"{arrow} {m['author'] or m['author_address']} · {m['channel']} · {human_time(m['created_at'])}"
        if m.get("delivery"):
            d = m["delivery"]
            head += f" · {d['status']}" + (f" ({d['error']})" if d.get("error") else "")
            if d["status"] == "in_doubt":
                head += f" · decide: outbox resend {d['outbox_id']} / outbox drop {d['outbox_id']}"
        line(inert(head, one_line=True), "bold" if m["direction"] != "note" else "yellow")
        if m.get("to") and m["direction"] != "in":
            rcpt = "to " + ", ".join(m["to"])
            if m.get("cc"):
                rcpt += " · cc " + ", ".join(m["cc"])
            if m.get("bcc"):
                rcpt += " · bcc " + ", ".join(m["bcc"])
            line(inert("  " + rcpt, one_line=True), "dim")
        elif m.get("cc"):
            line(inert("  cc " + ", ".join(m["cc"]), one_line=True), "dim")
        if m.get("thread_reason"):
            line(inert(f"  joined: {m['thread_reason']}", one_line=True), "dim")
        line(inert(m["text"]))
        if m.get("quoted_text"):
            n = m["quoted_text"].count("\n") + 1
            line(f"  [{n} quoted line(s) folded]", "dim")
        for att in m["attachments"]:
            line(
                inert(
                    f"  📎 {att['filename']} ({att['size']} bytes, {att['content_type']})"
                    + (f" — {att['note']}" if att.get("note") else ""),
                    one_line=True,
                )
            )
    return out


def print_ticket(doc: dict[str, Any]) -> None:
    """`tickets show` as text: the header, the customer, their other tickets, the thread."""
    lines = _ticket_lines(doc)
    from supportdesk.cli.plaintable import plain_lines, plain_width

    width = plain_width()  # not a terminal: rich's bytes without loading rich
    if width is not None and (sys.stdout.encoding or "utf-8").lower().startswith("utf"):
        plain: list[str] = []
        for pieces, _style in lines:
            if pieces is RULE:
                plain.append("─" * width)
            else:
                plain += "".join(text for text, _s in pieces).split("\n")
        text = plain_lines(plain)
        if text is not None:
            sys.stdout.write(text)
            return
    from rich.rule import Rule
    from rich.text import Text

    con = console()
    for pieces, style in lines:
        if pieces is RULE:
            con.print(Rule(style=style or ""))
        elif len(pieces) == 1 and pieces[0][1] is None:
            con.print(Text(pieces[0][0], style=style or ""))
        else:
            head = Text()
            for text, piece_style in pieces:
                head.append(text, style=piece_style)
            con.print(head)


# `report` (cli.reports and the quick path)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.1f}%"


def _median_p90(fig: dict[str, Any]) -> str:
    return f"median {_fmt(fig['median'])} · p90 {_fmt(fig['p90'])} (n={fig['count']})"


def print_report(doc: dict[str, Any]) -> None:
    """What `report` prints without --json or --csv."""
    from rich.text import Text

    con = console()
    p = doc["period"]
    head = Text()
    head.append("Support report ", style="bold")
    head.append(f"{p['since']} – {p['until']} ({p['timezone']}", style="")
    head.append(", business hours)" if p["business_hours"] else ", around the clock)")
    con.print(head)
    fr, res, cs = doc["first_response_minutes"], doc["resolution_minutes"], doc["csat"]
    summary = [
        {"figure": "Tickets created", "value": _fmt(doc["tickets_created"])},
        {"figure": "Tickets solved", "value": _fmt(doc["tickets_solved"])},
        {
            "figure": "First response, minutes",
            "value": f"median {_fmt(fr['median'])} · p90 {_fmt(fr['p90'])} (n={fr['count']})",
        },
        {
            "figure": "Resolution, minutes",
            "value": f"median {_fmt(res['median'])} · p90 {_fmt(res['p90'])} (n={res['count']})",
        },
        {
            "figure": "First response, calendar minutes",
            "value": _median_p90(doc["first_response_minutes_calendar"]),
        },
        {
            "figure": "Resolution, calendar minutes",
            "value": _median_p90(doc["resolution_minutes_calendar"]),
        },
        {
            "figure": "First-contact resolution",
            "value": f"{_pct(doc['first_contact_resolution']['rate'])} "
            f"({doc['first_contact_resolution']['count']} tickets)",
        },
        {
            "figure": "Reopen rate",
            "value": f"{_pct(doc['reopened']['rate'])} ({doc['reopened']['count']} tickets)",
        },
        {
            "figure": "SLA breach rate",
            "value": f"{_pct(doc['sla_breach_rate'])} ({doc['sla_breached']} tickets)",
        },
        {
            "figure": "CSAT",
            "value": f"average {_fmt(cs['average'])} · {cs['responses']} responses to "
            f"{cs['requested']} surveys ({_pct(cs['response_rate'])})",
        },
        {
            "figure": "NPS",
            "value": f"{_fmt(doc['nps']['score'])} · {doc['nps']['responses']} responses "
            f"({doc['nps']['promoters']} promoters, {doc['nps']['detractors']} detractors) "
            f"to {doc['nps']['requested']} surveys",
        },
        {"figure": "Backlog", "value": _fmt(doc["backlog"])},
    ]
    print_table(summary, [("figure", "Figure"), ("value", "Value")])
    for title, key, cols in (
        ("By channel", "by_channel", ["created", "solved", "breached", "first_response_median"]),
        ("By priority", "by_priority", ["created", "solved", "breached"]),
        (
            "By agent",
            "by_agent",
            ["replies", "solved", "complaints", "first_response_median", "resolution_median"],
        ),
    ):
        con.print(Text(f"\n{title}", style="bold"))
        rows = [{"name": name, **figures} for name, figures in doc[key].items()]
        print_table(
            rows,
            [
                ("name", key.removeprefix("by_").capitalize()),
                *[(c, c.replace("_", " ")) for c in cols],
            ],
            formatters=dict.fromkeys(cols, _fmt),
        )
    con.print(Text("\nTop tags", style="bold"))
    print_table(doc["top_tags"], [("tag", "Tag"), ("count", "Tickets")], empty="No tags.")
    con.print(Text("\nBacklog by age", style="bold"))
    print_table(doc["backlog_by_age"], [("age", "Age"), ("count", "Tickets")])


# --- search -------------------------------------------------------------------------------

HIT_CSV_COLUMNS = ["kind", "id", "ticket_id", "title", "snippet", "score", "when"]


def styled(text: str, spans: list[list[int]], style: str = "bold reverse") -> Any:
    """Text with the matching words marked; never interprets markup found in the data."""
    from rich.text import Text

    t = Text(inert(text, one_line=True))
    for a, b in spans:
        t.stylize(style, a, b)
    return t


def _hit_ref(h: dict[str, Any]) -> str:
    return {"ticket": f"#{h['id']}", "message": f"#{h['ticket_id']} msg {h['id']}",
            "customer": f"customer {h['id']}",
            "kb": f"kb {h.get('slug', h['id'])}"}[h["kind"]]  # fmt: skip


def print_hits(hits: list[dict[str, Any]], *, json_out: bool, csv_out: bool) -> None:
    """`search`'s output: JSON, CSV, or two lines a hit (its title, its snippet) with the
    matching words marked."""
    if json_out:
        print_json(hits)
        return
    if csv_out:
        print_csv(hits, HIT_CSV_COLUMNS)
        return
    refs = [inert(_hit_ref(h), one_line=True) for h in hits]
    width = max((len(r) for r in refs), default=0)
    extras = []
    for h in hits:
        extra = h.get("status") or ""
        if h["kind"] == "ticket" and h.get("customer"):
            extra = f"{extra} · {h['customer']}"
        extras.append(f"  [{inert(extra, one_line=True)}]" if extra else "")
    from supportdesk.cli.plaintable import plain_lines

    # not a terminal: rich's bytes (the marks are styles: none there) without loading rich
    if not hits:
        text = plain_lines(["Nothing found."])
    else:
        lines = []
        for ref, h, extra in zip(refs, hits, extras, strict=True):
            lines.append(f"{ref:<{width}}  " + inert(h["title"], one_line=True) + extra)
            if h["snippet"]:
                lines.append(" " * (width + 2) + inert(h["snippet"], one_line=True))
        text = plain_lines(lines, ellipsis=True)
    if text is not None:
        sys.stdout.write(text)
        return
    from rich.text import Text

    con = console()
    if not hits:
        con.print(Text("Nothing found."))
        return
    for ref, h, extra in zip(refs, hits, extras, strict=True):
        head = Text()
        head.append(f"{ref:<{width}}  ", style="bold")
        head.append_text(styled(h["title"], h["title_highlights"]))
        if extra:
            head.append(Text(extra, style="dim"))
        con.print(head, overflow="ellipsis", no_wrap=True)
        if h["snippet"]:
            line = Text(" " * (width + 2))
            line.append_text(styled(h["snippet"], h["highlights"]))
            con.print(line, overflow="ellipsis", no_wrap=True)
