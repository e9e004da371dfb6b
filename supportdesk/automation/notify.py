"""Notifications to agents: what happened to them, sent where each of them chose.

Events: ``assigned`` (a ticket was assigned to me by someone else or a rule), ``answered`` (the
customer wrote again on my ticket), ``mention`` (``@me`` in a note), ``sla_due`` (a deadline of
mine is N minutes away), ``breached`` (one of mine breached), ``rule`` (a rule's notify action).

A notification is first an audit event (``notify``, in the same transaction as what caused it),
then delivered by the automation worker, which follows those events with its own cursor and
records the outcome (``notified``). Targets (``agents.toml``, see ``settings``):

- ``telegram:CHAT``: a direct message from the desk's own bot (an outbox row on the first
  Telegram channel; the runner sends and retries it like any reply);
- ``email:ADDR``: a mail through the desk's own SMTP (an outbox row on the first e-mail channel
  that can send);
- anything with ``scheme://``: an apprise URL (ntfy, Matrix, Slack, Mattermost, JSON webhooks…),
  sent at once by apprise. apprise (BSD-2) is pinned in pyproject: it reaches ~100 services with
  one URL syntax, so the desk does not grow a client per service.

During an agent's quiet hours nothing is sent; the outcome records that it was held back.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from supportdesk.automation import settings as agent_settings
from supportdesk.desk import audit as events
from supportdesk.desk.desk import Desk
from supportdesk.store.models import Event, Meta, Outbox, Ticket, utcnow

log = logging.getLogger(__name__)

CURSOR = "automation.notify_cursor"
TITLES = {
    "assigned": "Assigned to you",
    "answered": "Customer answered",
    "mention": "You were mentioned",
    "sla_due": "SLA deadline soon",
    "breached": "SLA breached",
    "rule": "Rule",
}


def queue(
    session: Session,
    to: str,
    event: str,
    ticket: Ticket | None,
    *,
    agent: str,
    text: str = "",
    source: str = "",
    **extra: Any,
) -> Event:
    """Record a notification for agent ``to`` (delivered after the commit)."""
    subject = ticket.subject if ticket is not None else ""
    tid = ticket.id if ticket is not None else None
    line = text or _default_text(event, tid, subject, **extra)
    return events.record(
        session,
        "notify",
        agent=agent,
        ticket_id=tid,
        to=to,
        event=event,
        text=line,
        source=source,
        **extra,
    )


def _default_text(event: str, tid: int | None, subject: str, **extra: Any) -> str:
    ref = f"#{tid} {subject}".strip()
    if event == "assigned":
        return f"{ref} was assigned to you"
    if event == "answered":
        return f"The customer answered {ref}"
    if event == "mention":
        return f"{extra.get('by', 'Someone')} mentioned you on {ref}: {extra.get('excerpt', '')}".strip()
    if event == "sla_due":
        return f"{ref}: SLA deadline in {extra.get('minutes', '?')} min"
    if event == "breached":
        return f"{ref}: SLA {str(extra.get('target', '')).replace('_', ' ')} breached".replace(
            "  ", " "
        )
    return ref


@dataclass
class Delivery:
    event_id: int
    to: str
    event: str
    sent: list[str] = field(default_factory=list)
    queued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    held: str = ""


def _cursor(session: Session) -> int | None:
    row = session.get(Meta, CURSOR)
    return int(row.value) if row is not None and row.value.isdigit() else None


def _set_cursor(session: Session, value: int) -> None:
    row = session.get(Meta, CURSOR) or Meta(key=CURSOR)
    row.value = str(value)
    session.add(row)


def _channel(desk: Desk, kind: str) -> Any:
    from supportdesk.channels.email.channel import EmailConfig
    from supportdesk.channels.registry import channel_kind

    for ch in desk.config.channel:
        if channel_kind(ch) != kind:
            continue
        if kind == "email" and not (isinstance(ch, EmailConfig) and ch.smtp is not None):
            continue
        return ch
    return None


def deliver(desk: Desk, *, limit: int = 200) -> list[Delivery]:
    """Send the notifications recorded since the last call; returns what happened to each."""
    with desk.db.read() as s:
        cur = _cursor(s) or 0
        rows = s.exec(
            select(Event)
            .where(Event.kind == "notify", col(Event.id) > cur)
            .order_by(col(Event.id))
            .limit(limit)
        ).all()
    if not rows:
        return []
    prefs = agent_settings.load(desk.home)
    tz = desk.config.desk.timezone
    now = utcnow()
    out: list[Delivery] = []
    apprise_jobs: list[tuple[Delivery, str, str, str]] = []
    with desk.db.write() as s:
        for ev in rows:
            d = json.loads(ev.data or "{}")
            to, kind = str(d.get("to", "")), str(d.get("event", ""))
            text = str(d.get("text", ""))
            dl = Delivery(ev.id or 0, to, kind)
            out.append(dl)
            st = prefs.get(to)
            if st is None or not st.notify:
                dl.held = "no notification targets"
            elif not st.wants(kind):
                dl.held = f"{kind} is switched off"
            elif st.in_quiet(now, tz):
                dl.held = f"quiet hours ({st.quiet})"
            else:
                title = f"{desk.config.desk.name}: {TITLES.get(kind, kind)}"
                for url in st.notify:
                    low = url.lower()
                    if low.startswith("telegram:") and "//" not in low:
                        ch = _channel(desk, "telegram")
                        if ch is None:
                            dl.failed.append(f"{url}: the desk has no Telegram channel")
                            continue
                        _outbox(s, ch.name, "telegram", url.split(":", 1)[1], text, "")
                        dl.queued.append(url)
                    elif (
                        low.startswith("email:") or low.startswith("mailto:")
                    ) and "//" not in low:
                        ch = _channel(desk, "email")
                        if ch is None:
                            dl.failed.append(f"{url}: the desk has no e-mail channel that sends")
                            continue
                        from supportdesk.channels.registry import channel_class

                        row = _outbox(s, ch.name, "email", url.split(":", 1)[1], text, title)
                        row.external_message_id = channel_class(ch.type).reply_id(
                            ch.from_address() or "desk@localhost"
                        )
                        dl.queued.append(url)
                    else:
                        apprise_jobs.append((dl, url, title, text))
            _set_cursor(s, ev.id or 0)
    for dl, url, title, text in apprise_jobs:
        ok, why = _apprise(url, title, text)
        (dl.sent if ok else dl.failed).append(
            agent_settings.redact(url) + ("" if ok else f": {why}")
        )
    with desk.db.write() as s:
        for dl in out:
            events.record(
                s,
                "notified",
                agent="system",
                ticket_id=None,
                of=dl.event_id,
                to=dl.to,
                event=dl.event,
                sent=dl.sent,
                queued=[agent_settings.redact(u) for u in dl.queued],
                failed=dl.failed,
                held=dl.held,
            )
    return out


def _outbox(s: Session, channel: str, kind: str, to: str, text: str, subject: str) -> Outbox:
    row = Outbox(
        ticket_id=None,
        channel=channel,
        kind=kind,
        to_address=to,
        state="queued",
        next_attempt_at=utcnow(),
        payload=json.dumps(
            {"text": text, "subject": subject, "auto": True, "notification": True},
            ensure_ascii=False,
        ),
    )
    s.add(row)
    return row


def _apprise(url: str, title: str, body: str) -> tuple[bool, str]:
    import apprise

    ap = apprise.Apprise()
    if not ap.add(url):
        return False, "apprise does not know this URL"
    try:
        ok = bool(ap.notify(title=title, body=body))
    except Exception as exc:  # a plug-in's own error: one line, the rest still go out
        return False, f"{type(exc).__name__}: {exc}"
    return ok, "" if ok else "the service did not accept it"


# ---------------------------------------------------------------- the console's own alerts


def in_my_views(desk: Desk, new: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """The new tickets the console should ring for: those in the agent's own saved views, or all
    of them when the agent has saved none (the built-in views show every open ticket)."""
    if not new:
        return []
    with desk.db.read() as session:
        return _in_my_views(session, desk, new)


def _in_my_views(session: Session, desk: Desk, new: list[tuple[int, str]]) -> list[tuple[int, str]]:
    from sqlmodel import col as _col

    from supportdesk.search.query import QueryError, apply_query
    from supportdesk.store.models import SavedView

    mine = session.exec(select(SavedView).where(SavedView.agent == desk.agent)).all()
    if not mine:
        return new
    ids = [tid for tid, _s in new]
    hit: set[int] = set()
    for v in mine:
        try:
            q = apply_query(
                select(Ticket.id).where(_col(Ticket.id).in_(ids)),
                v.query,
                desk=desk,
                session=session,
            )
        except QueryError:
            continue
        hit.update(int(x) for x in session.exec(q).all())
    return [(tid, s) for tid, s in new if tid in hit]


def _osc_safe(text: str, limit: int = 200) -> str:
    """Text for inside an OSC string: no control characters (ESC and BEL would end it early)."""
    clean = "".join(c if c.isprintable() else " " for c in text)
    return " ".join(clean.split())[:limit]


def desktop_notification(title: str, body: str) -> str:
    """The terminal's own desktop notification: OSC 9 (iTerm2, Windows Terminal, kitty, WezTerm)
    and OSC 777 (rxvt-unicode, foot, Ghostty, VTE); a terminal ignores the one it does not know."""
    t, b = _osc_safe(title, 80).replace(";", ","), _osc_safe(body)
    return f"\x1b]9;{t}: {b}\x07\x1b]777;notify;{t};{b}\x07"
