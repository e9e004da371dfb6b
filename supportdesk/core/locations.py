"""Every path supportdesk uses, in one place.

The home holds config.toml, the database, the raw ledger and attachments. It is chosen by
``--home``, then ``$SUPPORTDESK_HOME``, then the platform's data directory.
"""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "supportdesk"


def default_home() -> Path:
    """The home from the environment, else the platform's data directory (not created)."""
    env = os.environ.get("SUPPORTDESK_HOME")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_path  # here: a command given --home never needs it

    return user_data_path(APP_NAME, appauthor=False)


def downloads_dir(ticket_id: int) -> Path:
    """Where the console saves a ticket's attachments: the XDG download folder's
    supportdesk/<ticket>/ (not created here)."""
    from platformdirs import user_downloads_path

    return user_downloads_path() / APP_NAME / str(int(ticket_id))


def cache_dir() -> Path:
    """The user's cache folder for supportdesk (``$XDG_CACHE_HOME``, else ~/.cache; not
    created here): what can be computed again, such as holiday calendars."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(base) if os.path.isabs(base) else Path.home() / ".cache") / APP_NAME


def config_path(home: Path) -> Path:
    return home / "config.toml"


def database_path(home: Path) -> Path:
    return home / "supportdesk.db"


def raw_dir(home: Path) -> Path:
    """Content-addressed raw bytes of every inbound message."""
    return home / "raw"


def attachments_dir(home: Path) -> Path:
    return home / "attachments"


def is_shared_home(home: Path) -> bool:
    """A home whose directory is group-writable is shared by a team: files are made 0660."""
    try:
        return bool(home.stat().st_mode & 0o020)
    except OSError:
        return False


def is_team_readable_home(home: Path) -> bool:
    """A setgid home the group may read but not write (2750): the runner's home on a team desk,
    whose attachments and ledger agents read and never write. Files are made 0640."""
    try:
        mode = home.stat().st_mode
    except OSError:
        return False
    return bool(mode & 0o2000) and bool(mode & 0o040) and not mode & 0o020


def file_mode(home: Path) -> int:
    if is_shared_home(home):
        return 0o660
    return 0o640 if is_team_readable_home(home) else 0o600


def dir_mode(home: Path) -> int:
    if is_shared_home(home):
        return 0o2770
    return 0o2750 if is_team_readable_home(home) else 0o700


def ensure_home(home: Path) -> Path:
    """Create the home (0700 unless it already exists) and its sub-folders."""
    if not home.exists():
        home.mkdir(parents=True, mode=0o700)
    mode = dir_mode(home)
    for sub in (raw_dir(home), attachments_dir(home)):
        if not sub.exists():
            sub.mkdir(parents=True, exist_ok=True)
            os.chmod(sub, mode)
    return home
