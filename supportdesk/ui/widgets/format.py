"""Small formatting helpers shared by the console's widgets (times, priorities, channels)."""

from __future__ import annotations

from datetime import datetime
from functools import cache

from rich.style import Style

from supportdesk.channels.registry import channel_class, channel_types
from supportdesk.core.config import ConfigError
from supportdesk.core.i18n import _

PRIORITY_STYLE = {
    "urgent": Style(color="bright_red", bold=True),
    "high": Style(color="yellow", bold=True),
    "normal": Style(),
    "low": Style(dim=True),
}
STATUS_STYLE = {
    "new": Style(color="bright_cyan", bold=True),
    "open": Style(color="green"),
    "pending": Style(color="yellow"),
    "solved": Style(dim=True),
    "closed": Style(dim=True),
}
OVERDUE = Style(color="bright_red", bold=True)
SOON = Style(color="yellow")
PHONE_MARK = "☎"  # a logged call: no channel carries it


@cache
def _channel_marks() -> dict[str, str]:
    """Each installed channel type's icon, by the kind of address its customers have."""
    marks = {"phone": PHONE_MARK}
    for type_ in channel_types():
        try:
            cls = channel_class(type_)
        except ConfigError:  # a broken plugin: its messages get the plain mark
            continue
        marks.setdefault(cls.identity_kind, cls.icon)
    return marks


@cache
def kind_mark(kind: str) -> str:
    """The one-cell mark of a message's or ticket's kind (its channel's icon).

    A built-in channel type is named after its customers' address kind: its class alone is
    loaded, not every installed type's (WhatsApp's and the web chat's modules cost ~0.3 s of
    CPU and 10-14 MB each, for a mark the queue may never show)."""
    if kind == "phone":
        return PHONE_MARK
    try:
        cls = channel_class(kind)
    except ConfigError:
        cls = None
    if cls is not None and cls.identity_kind == kind:
        return cls.icon
    return _channel_marks().get(kind, "·")


def span(seconds: float) -> str:
    """A short duration in the console's language: 45s, 12m, 3h, 5d, 8w (45с, 12м, 3ч, 5д, 8н)."""
    s = abs(int(seconds))
    if s < 60:
        return _("{n}s").format(n=s)
    if s < 3600:
        return _("{n}m").format(n=s // 60)
    if s < 86400:
        return _("{n}h").format(n=s // 3600)
    if s < 86400 * 14:
        return _("{n}d").format(n=s // 86400)
    return _("{n}w").format(n=s // (86400 * 7))


def age(created: datetime | None, now: datetime) -> str:
    if created is None:
        return ""
    return span((now - created).total_seconds())


def due(due_at: datetime | None, now: datetime, breached: bool = False) -> tuple[str, Style]:
    """The SLA column: time left, or how long overdue (negative, in red)."""
    if due_at is None:
        return ("!" if breached else "", OVERDUE if breached else Style())
    left = (due_at - now).total_seconds()
    if left < 0:
        return ("-" + span(left), OVERDUE)
    return (span(left), SOON if left < 7200 else Style())


def when(dt: datetime | None, now: datetime) -> str:
    """A message time: HH:MM today, else the date and time."""
    if dt is None:
        return ""
    if now.tzinfo is not None:
        dt = dt.astimezone(now.tzinfo)
    if dt.date() == now.date():
        return dt.strftime("%H:%M")
    if dt.year == now.year:
        return _local_date(dt, "d MMM HH:mm")
    return dt.strftime("%Y-%m-%d %H:%M")


def _local_date(dt: datetime, pattern: str) -> str:
    """``dt`` with month names in the console's language (babel's CLDR data): 29 Nov, 29 нояб."""
    from babel.dates import format_datetime

    from supportdesk.core.i18n import language

    return format_datetime(dt, pattern, tzinfo=dt.tzinfo, locale=language())


def status_label(status: str) -> str:
    return {
        "new": _("new"), "open": _("open"), "pending": _("pending"), "solved": _("solved"),
        "closed": _("closed"),
    }.get(status, status)  # fmt: skip


def priority_label(priority: str) -> str:
    return {"low": _("low"), "normal": _("normal"), "high": _("high"), "urgent": _("urgent")}.get(
        priority, priority
    )
