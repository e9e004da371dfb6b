"""Strict modes for the runner (as OpenSSH's StrictModes): the files it trusts are its own.

The runner executes the commands its config names (``password_cmd``, ``token_cmd`` and any other
``*_cmd``) and reads channel secrets. Whoever can write config.toml or one of those programs can
run code as the runner and read its secrets, so the runner refuses to start when:

* config.toml is not owned by the runner's user (or root), or is writable by group or others,
  or is a symbolic link;
* a program a ``*_cmd`` would execute, or any folder above it, is writable by anyone but its
  owner (a root-owned sticky folder such as /tmp excepted) or owned by someone other than the
  runner's user or root.

The config is read from the descriptor that was checked, so it cannot be swapped between the
check and the read. Each refusal is one sentence naming the file.
"""

from __future__ import annotations

import os
import shlex
import shutil
import stat
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from supportdesk.core.config import Config, ConfigError, config_from_text
from supportdesk.core.locations import config_path


class StrictModeError(ConfigError):
    """A file the runner would trust is writable or owned by someone else. One sentence."""


def _owner_ok(st: os.stat_result, uid: int) -> bool:
    return st.st_uid in (uid, 0)


def _who(st: os.stat_result) -> str:
    import pwd

    try:
        return pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        return f"uid {st.st_uid}"


def _me(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def read_trusted_config(home: Path, uid: int | None = None) -> Config:
    """config.toml, checked and read from one descriptor; the defaults when there is none."""
    uid = os.geteuid() if uid is None else uid
    path = config_path(home)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return Config()
    except OSError as exc:
        if os.path.islink(path):
            raise StrictModeError(
                f"the runner refuses to start: {path} is a symbolic link, not a file of its own"
            ) from None
        raise ConfigError(f"{path} cannot be read: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise StrictModeError(f"the runner refuses to start: {path} is not a regular file")
        _check_file(path, st, uid, "its config")
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(fd)
    try:
        text = b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} cannot be read: {exc}") from None
    cfg = config_from_text(text, path)
    for cmd in commands_in(cfg):
        check_command(cmd, uid)
    return cfg


def _check_file(path: Path | str, st: os.stat_result, uid: int, what: str) -> None:
    if not _owner_ok(st, uid):
        raise StrictModeError(
            f"the runner refuses to start: {path} ({what}) is owned by {_who(st)}, "
            f"not by {_me(uid)} or root"
        )
    if st.st_mode & 0o022:
        who = "its group" if st.st_mode & 0o020 else "everyone"
        raise StrictModeError(
            f"the runner refuses to start: {path} ({what}) is writable by {who}; "
            f"make it writable by its owner only (chmod go-w {path})"
        )


def commands_in(cfg: BaseModel) -> list[str]:
    """Every ``*_cmd`` value anywhere in the config (channels, servers, future sections)."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, BaseModel):
            for name in type(value).model_fields:
                item = getattr(value, name)
                if name.endswith("_cmd") and isinstance(item, str) and item.strip():
                    found.append(item)
                else:
                    walk(item)
            for name, item in (value.model_extra or {}).items():
                if name.endswith("_cmd") and isinstance(item, str) and item.strip():
                    found.append(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)

    walk(cfg)
    return found


def check_command(cmd: str, uid: int | None = None) -> Path:
    """The program ``cmd`` runs, refused unless it and every folder above it are safe."""
    uid = os.geteuid() if uid is None else uid
    try:
        argv = shlex.split(cmd)
    except ValueError as exc:
        raise ConfigError(f"the command {cmd!r} cannot be split into words: {exc}") from None
    if not argv:
        raise ConfigError("a *_cmd in the config is empty")
    found = shutil.which(argv[0])
    if found is None:
        raise ConfigError(f"the program {argv[0]!r} of the command {cmd!r} was not found")
    prog = Path(os.path.abspath(found))
    # the link itself may be a system alternative (/usr/bin/python3 -> python3.11): check the
    # link's folder chain and the real file's chain
    for path in dict.fromkeys([prog, Path(os.path.realpath(prog))]):
        _check_chain(path, uid)
    return prog


def _check_chain(path: Path, uid: int) -> None:
    st = os.lstat(path)
    if not stat.S_ISLNK(st.st_mode):
        _check_file(path, st, uid, "a program its config runs")
    for folder in path.parents:
        fst = os.stat(folder)
        if not _owner_ok(fst, uid):
            raise StrictModeError(
                f"the runner refuses to start: {folder} (a folder above {path.name}, which its "
                f"config runs) is owned by {_who(fst)}, not by {_me(uid)} or root"
            )
        sticky_root = fst.st_uid == 0 and fst.st_mode & stat.S_ISVTX
        if fst.st_mode & 0o022 and not sticky_root:
            raise StrictModeError(
                f"the runner refuses to start: {folder} (a folder above {path.name}, which its "
                "config runs) is writable by others"
            )
