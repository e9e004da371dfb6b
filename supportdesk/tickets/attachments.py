"""A ticket's stored attachments, for agents who want a copy on their own disk.

The console's save dialog calls these: where a file is kept, the name it is offered under (the
XDG download folder's supportdesk/<ticket>/, a safe file name), and the copy itself (never a
dotfile, never over a file, never through a link, 0600: ``store.files.save_copy``).
"""

from __future__ import annotations

from pathlib import Path

from supportdesk.core.locations import downloads_dir
from supportdesk.desk.desk import Desk
from supportdesk.store.files import StorageError, attachment_path, safe_filename, save_copy
from supportdesk.store.models import AttachmentRow

__all__ = ["StorageError", "default_destination", "save_attachment", "stored_file"]


def stored_file(desk: Desk, attachment_id: int) -> Path | None:
    """The stored file of an attachment; None when it was never downloaded or lies elsewhere."""
    with desk.db.read() as s:
        row = s.get(AttachmentRow, attachment_id)
    if row is None or not row.stored_path:
        return None
    try:
        return attachment_path(desk.home, row.stored_path)
    except ValueError:
        return None


def default_destination(ticket_id: int, filename: str) -> tuple[Path, Path]:
    """(the ticket's download folder, the path a save is offered under)."""
    folder = downloads_dir(ticket_id)
    return folder, folder / safe_filename(filename)


def save_attachment(
    desk: Desk, ticket_id: int, attachment_id: int, dest: Path, *, free_name: bool = False
) -> Path:
    """Copy a stored attachment to ``dest`` (a folder gets the safe file name); returns where it
    went. StorageError (an OSError) with one sentence when it cannot be saved."""
    src = stored_file(desk, attachment_id)
    if src is None or not src.exists():
        raise StorageError("the file is not in the desk's storage")
    folder = downloads_dir(ticket_id)
    if dest.parent == folder:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return save_copy(src, dest, pick_free_name=free_name)
