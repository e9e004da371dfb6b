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
    ):
        self.desk_name = desk_name
        self.timezone = timezone
        self.database_url = database_url
        self.channels = channels or []  # (name, type)
        # the desk's own addresses (``Config.own_addresses``), as the full validation found them
        self.own_addresses = own_addresses or []


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
    )
