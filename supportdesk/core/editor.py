"""Handing text to the user's editor: one way for the console and the command line.

``$VISUAL`` first, then ``$EDITOR`` (the POSIX convention). The text goes through a private
temporary file that is removed afterwards, whatever happens.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from pathlib import Path


class EditorError(Exception):
    """The editor could not be used; the message is one sentence for the user."""


def editor_command() -> list[str]:
    """The user's editor as an argument list; EditorError when none is set."""
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
    if not editor or not editor.strip():
        raise EditorError("no editor is set: name one in the VISUAL or EDITOR environment variable")
    try:
        return shlex.split(editor)
    except ValueError as exc:
        raise EditorError(f"the editor command {editor!r} cannot be read: {exc}") from None


def edit_text(initial: str, *, suffix: str = ".md", prefix: str = "supportdesk-") -> str:
    """Let the user edit ``initial``; returns what they saved. A failing editor changes nothing."""
    cmd = editor_command()
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix)  # 0600, a random name
    path = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(initial)
        try:
            proc = subprocess.run([*cmd, str(path)], check=False)
        except OSError as exc:
            raise EditorError(f"the editor {cmd[0]!r} could not be started: {exc}") from None
        if proc.returncode != 0:
            raise EditorError(f"the editor exited with status {proc.returncode}; nothing was saved")
        return path.read_text(encoding="utf-8", errors="replace")
    finally:
        path.unlink(missing_ok=True)
