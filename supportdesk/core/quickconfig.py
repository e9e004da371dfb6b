"""config.toml read without pydantic, for the command line's quick read path.

The quick read is used only when it is certain: the full validation (``config.load_config``)
leaves a stamp beside config.toml naming the exact text it accepted, under this code, with only
built-in channel types. A config whose text, code or channels differ from the stamp (or with
no stamp, or an unreadable one) is not read here: the caller falls back to the full validation,
which gives its one-sentence error for a bad config and stamps a good one.
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from supportdesk.core.locations import config_path, file_mode

STAMP = ".config-checked"
_PACKAGE = Path(__file__).resolve().parents[1]


@dataclass
class QuickConfig:
    """What the quick read path needs of a validated config."""

    desk_name: str = "Support"
    timezone: str = "UTC"
    database_url: str | None = None
    channels: list[tuple[str, str]] = field(default_factory=list)  # (name, type)


def _code_tag() -> str:
    """Changes whenever the code that validates a config may have: the files of core/ and
    channels/ (where the config models live), by name, size and modification time."""
    parts = []
    for folder in (_PACKAGE / "core", _PACKAGE / "channels"):
        for path in sorted(folder.rglob("*.py")):
            st = path.stat()
            parts.append(f"{path.relative_to(_PACKAGE)}:{st.st_size}:{st.st_mtime_ns}")
    return "\n".join(parts)


def _digest(text: str) -> str:
    h = hashlib.sha256(text.encode("utf-8"))
    h.update(b"\0" + _code_tag().encode("utf-8"))
    return h.hexdigest()


def certify(home: Path, text: str, channel_types: list[str], builtin: set[str]) -> None:
    """Remember that ``text`` validated (called by the full validation). Nothing is stamped
    when a channel is not built in (a third-party model may change without this code
    changing). Best effort: a home this user cannot write just keeps the full path."""
    if not set(channel_types) <= builtin:
        return
    path = home / STAMP
    digest = _digest(text)
    try:
        if path.read_text(encoding="ascii").strip() == digest:
            return
    except (OSError, UnicodeDecodeError):
        pass
    try:
        tmp = home / f"{STAMP}.{os.getpid()}"
        mode = file_mode(home) & ~0o022
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            os.fchmod(fd, mode)
            fh.write(digest + "\n")
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
        stamp = (home / STAMP).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if stamp != _digest(text):
        return None
    data: dict[str, Any] = tomllib.loads(text)  # it validated, so it parses
    desk = data.get("desk", {})
    return QuickConfig(
        desk_name=desk.get("name", "Support"),
        timezone=desk.get("timezone", "UTC"),
        database_url=desk.get("database_url"),
        channels=[(c["name"], c["type"]) for c in data.get("channel", [])],
    )
