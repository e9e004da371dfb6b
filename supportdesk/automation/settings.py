"""Per-agent automation settings: ``$SUPPORTDESK_HOME/agents.toml``.

::

    [agent.bob]
    notify = ["telegram:5550001", "email:bob@acme.test", "ntfy://ntfy.example/acme-bob"]
    quiet = "22:00-08:00"            # desk time; nothing is sent then
    shift = "mon-fri 09:00-18:00"    # routing picks only agents on shift; off shift, their
                                     # new/open tickets go back to the group
    events = ["assigned", "answered", "mention", "sla_due", "breached"]
    sla_minutes = 30                 # "an SLA deadline of mine is N minutes away"

Notification URLs can hold secrets (an apprise URL often carries a token), and secrets never go
into the database: this file is private to the desk (0600, 0660 in a shared team home) and the
CLI shows each URL without its credentials.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from supportdesk.core.locations import file_mode
from supportdesk.desk.desk import BadInput, Desk

EVENTS = ("assigned", "answered", "mention", "sla_due", "breached", "rule")
DEFAULT_EVENTS = ("assigned", "answered", "mention", "sla_due", "breached", "rule")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")


@dataclass
class Span:
    """A daily time span in desk time, possibly across midnight, on some weekdays."""

    days: tuple[int, ...]
    start: time
    end: time

    def contains(self, local: datetime) -> bool:
        t = local.time()
        if self.start <= self.end:
            return local.weekday() in self.days and self.start <= t < self.end
        # across midnight: the evening belongs to its day, the small hours to the day before
        if t >= self.start:
            return local.weekday() in self.days
        if t < self.end:
            return (local.weekday() - 1) % 7 in self.days
        return False


def parse_span(text: str, what: str) -> Span:
    """``"22:00-08:00"`` or ``"mon-fri 09:00-18:00"``; BadInput naming ``what`` otherwise."""
    s = " ".join(str(text).split()).lower()
    days: tuple[int, ...] = tuple(range(7))
    if " " in s:
        dspec, s = s.split(" ", 1)
        picked: list[int] = []
        for part in dspec.split(","):
            a, _, b = part.partition("-")
            if a[:3] not in _DAYS or (b and b[:3] not in _DAYS):
                raise BadInput(f"{what}: {text!r} is not a span such as mon-fri 09:00-18:00")
            ia = _DAYS.index(a[:3])
            ib = _DAYS.index(b[:3]) if b else ia
            picked.extend(range(ia, ib + 1) if ia <= ib else [*range(ia, 7), *range(0, ib + 1)])
        days = tuple(sorted(set(picked)))
    m = _SPAN.match(s.replace(" ", ""))
    if not m:
        raise BadInput(f"{what}: {text!r} is not a span such as 22:00-08:00")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2):
        raise BadInput(f"{what}: {text!r} has a time that does not exist")
    end = time(0, 0) if h2 == 24 else time(h2, m2)
    start = time(h1, m1)
    if start == end:
        raise BadInput(f"{what}: {text!r} starts and ends at the same time")
    return Span(days, start, end)


@dataclass
class AgentSettings:
    name: str
    notify: list[str] = field(default_factory=list)
    quiet: str = ""
    shift: str = ""
    events: list[str] = field(default_factory=lambda: list(DEFAULT_EVENTS))
    sla_minutes: int = 30

    def wants(self, event: str) -> bool:
        return event in self.events

    def in_quiet(self, now: datetime, tz: str) -> bool:
        return bool(self.quiet) and parse_span(self.quiet, "quiet").contains(_local(now, tz))

    def on_shift(self, now: datetime, tz: str) -> bool:
        return not self.shift or parse_span(self.shift, "shift").contains(_local(now, tz))

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "notify": [redact(u) for u in self.notify],
            "quiet": self.quiet,
            "shift": self.shift,
            "events": self.events,
            "sla_minutes": self.sla_minutes,
        }


def _local(now: datetime, tz: str) -> datetime:
    try:
        return now.astimezone(ZoneInfo(tz or "UTC"))
    except Exception:
        return now


def path(home: Path) -> Path:
    return home / "agents.toml"


def check_url(url: str) -> str:
    """A notification target: ``telegram:CHAT``, ``email:ADDR`` or an apprise URL."""
    u = url.strip()
    if not u or any(c in u for c in "\r\n\t ") or len(u) > 2000:
        raise BadInput(f"notify: {url!r} is not a notification URL")
    low = u.lower()
    if low.startswith("telegram:") and "//" not in low:
        if not re.fullmatch(r"-?\d{1,20}", u.split(":", 1)[1]):
            raise BadInput(f"notify: {url!r} needs a numeric chat id (telegram:123456)")
        return u
    if (low.startswith("email:") or low.startswith("mailto:")) and "//" not in low:
        addr = u.split(":", 1)[1]
        if not re.fullmatch(r"[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+", addr):
            raise BadInput(f"notify: {url!r} needs an e-mail address (email:bob@acme.test)")
        return u
    if "://" not in u:
        raise BadInput(
            f"notify: {url!r} is not telegram:CHAT, email:ADDR or an apprise URL (scheme://...)"
        )
    return u


def redact(url: str) -> str:
    """The URL without credentials or token-like path parts (for display)."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    tail = "/..." if parts.path.strip("/") else ""
    return f"{parts.scheme}://{host}{tail}"


def load(home: Path) -> dict[str, AgentSettings]:
    p = path(home)
    if not p.exists():
        return {}
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise BadInput(f"{p} cannot be read: {exc}") from None
    out: dict[str, AgentSettings] = {}
    for name, d in (data.get("agent") or {}).items():
        if not isinstance(d, dict):
            continue
        events = [str(e) for e in d.get("events", DEFAULT_EVENTS)]
        out[name] = AgentSettings(
            name=name,
            notify=[str(u) for u in d.get("notify", [])],
            quiet=str(d.get("quiet", "")),
            shift=str(d.get("shift", "")),
            events=events,
            sla_minutes=int(d.get("sla_minutes", 30)),
        )
    return out


def get(home: Path, name: str) -> AgentSettings:
    return load(home).get(name) or AgentSettings(name)


def save(home: Path, settings: AgentSettings) -> None:
    """Write one agent's settings, keeping the rest of the file and its comments."""
    import tomlkit

    p = path(home)
    doc = tomlkit.parse(p.read_text(encoding="utf-8")) if p.exists() else tomlkit.document()
    if "agent" not in doc:
        doc["agent"] = tomlkit.table(is_super_table=True)
    table = tomlkit.table()
    table["notify"] = settings.notify
    if settings.quiet:
        table["quiet"] = settings.quiet
    if settings.shift:
        table["shift"] = settings.shift
    table["events"] = settings.events
    table["sla_minutes"] = settings.sla_minutes
    doc["agent"][settings.name] = table  # type: ignore[index]
    tmp = p.with_suffix(".toml.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, file_mode(home))
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(tomlkit.dumps(doc))
    os.chmod(tmp, file_mode(home))
    os.replace(tmp, p)


def edit(
    home: Path,
    name: str,
    *,
    notify: list[str] | None = None,
    quiet: str | None = None,
    shift: str | None = None,
    events: list[str] | None = None,
    sla_minutes: int | None = None,
) -> AgentSettings:
    """Change an agent's settings; ``notify=["none"]`` clears the targets, ``quiet=""`` ends quiet hours."""
    st = get(home, name)
    if notify is not None:
        st.notify = (
            [] if [u.lower() for u in notify] == ["none"] else [check_url(u) for u in notify]
        )
    if quiet is not None:
        if quiet and quiet.lower() != "none":
            parse_span(quiet, "quiet")
            st.quiet = quiet
        else:
            st.quiet = ""
    if shift is not None:
        if shift and shift.lower() != "none":
            parse_span(shift, "shift")
            st.shift = shift
        else:
            st.shift = ""
    if events is not None:
        bad = [e for e in events if e not in EVENTS]
        if bad:
            raise BadInput(f"events: {bad[0]!r} is not one of {', '.join(EVENTS)}")
        st.events = list(dict.fromkeys(events))
    if sla_minutes is not None:
        if sla_minutes < 1 or sla_minutes > 10080:
            raise BadInput("sla_minutes: give a number of minutes from 1 to 10080")
        st.sla_minutes = sla_minutes
    save(home, st)
    return st


def minutes(n: int) -> timedelta:
    return timedelta(minutes=n)


def edit_for(desk: Desk, name: str, **changes: Any) -> AgentSettings:
    """``edit`` for agent ``name`` as the acting agent: yourself, or anyone when you are a lead."""
    from supportdesk.desk.desk import NotFound
    from supportdesk.desk.permissions import find_agent, require_lead

    with desk.db.read() as s:
        if find_agent(s, name) is None:
            raise NotFound(f"there is no agent named {name!r}")
        if name != desk.agent:
            require_lead(s, desk, "changing another agent's notifications")
    return edit(desk.home, name, **changes)
