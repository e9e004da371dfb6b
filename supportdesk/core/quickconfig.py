"""config.toml read without pydantic, for the command line's quick read path.

The quick read is used only when it is certain: the full validation (``config.load_config``)
leaves a stamp beside config.toml holding the exact text it accepted, under this code, with only
built-in channel types. A config whose text, code or channels differ from the stamp (or with
no stamp, or an unreadable one) is not read here: the caller falls back to the full validation,
which gives its one-sentence error for a bad config and stamps a good one.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from supportdesk.core.locations import config_path, file_mode

STAMP = ".config-checked"
_PACKAGE = Path(__file__).resolve().parents[1]


class QuickConfig:
    """What the quick read path needs of a validated config (a plain class: the dataclasses
    module alone would cost the quick path a tenth of its time)."""

    def __init__(
        self,
        desk_name: str = "Support",
        timezone: str = "UTC",
        database_url: str | None = None,
        channels: list[tuple[str, str]] | None = None,
        own_addresses: list[str] | None = None,
        hours: Any = None,
        channel_hours: list[tuple[str, Any]] | None = None,
    ):
        self.desk_name = desk_name
        self.timezone = timezone
        self.database_url = database_url
        self.channels = channels or []  # (name, type)
        # the desk's own addresses (``Config.own_addresses``), as the full validation found them
        self.own_addresses = own_addresses or []
        # the TOML tables of [desk.hours] and of each channel's hours, as written (``hours``)
        self.desk_hours = hours
        self.channel_hours = channel_hours or []

    def hours(self, channel: str | None = None) -> QuickHours | None:
        """The business hours ``sla.hours.BusinessHours.from_config`` would read for the desk
        (or for ``channel``): the last channel of that name with its own hours, else the
        desk's; LookupError when a table holds what only the full validation reads."""
        table = self.desk_hours
        for name, own in self.channel_hours:
            if channel is not None and name == channel and own is not None:
                table = own
        return None if table is None else QuickHours(table)


class QuickHours:
    """An ``[desk.hours]`` table as ``core.config.HoursConfig`` gives it (``always``,
    ``holidays``, ``extra_holidays``, ``weekly()``), for a table of plain TOML values only:
    anything the validation would have coerced raises LookupError (take the full path)."""

    FIELDS = ("always", "holidays", "extra_holidays")

    def __init__(self, table: Any):
        if not isinstance(table, dict):
            raise LookupError("hours: not a table")
        always = table.get("always", False)
        holidays = table.get("holidays")
        extra = table.get("extra_holidays", [])
        if not isinstance(always, bool) or not (holidays is None or isinstance(holidays, str)):
            raise LookupError("hours: the full validation reads these values")
        if not (isinstance(extra, list) and all(isinstance(d, str) for d in extra)):
            raise LookupError("hours: the full validation reads these values")
        self.always: bool = always
        self.holidays: str | None = holidays
        self.extra_holidays: list[str] = list(extra)
        self._weekly = {k: str(v) for k, v in table.items() if k not in self.FIELDS}

    def weekly(self) -> dict[str, str]:
        return dict(self._weekly)


def _code_tag() -> str:
    """Changes whenever the code that validates a config may have: the files of core/ and
    channels/ (where the config models live), by name, size and modification time."""
    parts = []
    for folder in (_PACKAGE / "core", _PACKAGE / "channels"):
        for path in sorted(folder.rglob("*.py")):
            st = path.stat()
            parts.append(f"{path.relative_to(_PACKAGE)}:{st.st_size}:{st.st_mtime_ns}")
    return "\n".join(parts)


def _stamp(text: str) -> str:
    """The stamp's head: the code's tag and the very text validated (compared whole, so no
    digest, and no hashlib to load). What the validation derived follows it (``certify``)."""
    return _code_tag() + "\0" + text


def certify(
    home: Path,
    text: str,
    channel_types: list[str],
    builtin: set[str],
    own_addresses: Iterable[str] = (),
) -> None:
    """Remember that ``text`` validated (called by the full validation), with what the
    validated config derives that the quick path needs: the desk's own addresses (as JSON after
    a NUL, which neither valid TOML nor JSON holds). Nothing is stamped when a channel is not
    built in (a third-party model may change without this code changing). Best effort: a home
    this user cannot write just keeps the full path."""
    if not set(channel_types) <= builtin:
        return
    import json

    path = home / STAMP
    stamp = _stamp(text) + "\0" + json.dumps(sorted(own_addresses))
    try:
        if path.read_text(encoding="utf-8") == stamp:
            return
    except (OSError, UnicodeDecodeError):
        pass
    try:
        tmp = home / f"{STAMP}.{os.getpid()}"
        mode = file_mode(home) & ~0o022
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            os.fchmod(fd, mode)
            fh.write(stamp)
        os.replace(tmp, path)
    except OSError:
        pass


def quick_config(home: Path) -> QuickConfig | None:
    """The config, when the full validation certainly accepted this very text; else None."""
    path = config_path(home)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return QuickConfig() if not path.is_symlink() else None  # no file: the defaults
    except (OSError, UnicodeDecodeError):
        return None
    try:
        stamp = (home / STAMP).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    head, _, derived = stamp.rpartition("\0")
    if head != _stamp(text):
        return None
    import json

    try:
        own = json.loads(derived)
    except ValueError:
        return None
    if not (isinstance(own, list) and all(isinstance(a, str) for a in own)):
        return None
    data: dict[str, Any] = tomllib.loads(text)  # it validated, so it parses
    desk = data.get("desk", {})
    return QuickConfig(
        desk_name=desk.get("name", "Support"),
        timezone=desk.get("timezone", "UTC"),
        database_url=desk.get("database_url"),
        channels=[(c["name"], c["type"]) for c in data.get("channel", [])],
        own_addresses=own,
        hours=desk.get("hours"),
        channel_hours=[(c["name"], c.get("hours")) for c in data.get("channel", [])],
    )
