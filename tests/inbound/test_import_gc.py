"""An import collects garbage once per batch and gives the collector back as it found it."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest

from supportdesk.channels.files import iter_raw_refs
from supportdesk.inbound import importing
from tests.factories import raw_email


def _folder(tmp_path: Path, count: int) -> Path:
    folder = tmp_path / "mail"
    folder.mkdir()
    for i in range(count):
        (folder / f"{i:03}.eml").write_bytes(
            raw_email(subject=f"Q {i}", body=f"Message {i}", msgid=f"g{i}@x.test")
        )
    return folder


@pytest.mark.parametrize("enabled", [True, False])
def test_the_collector_is_as_it_was_after_an_import(
    desk: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, enabled: bool
) -> None:
    from supportdesk.inbound import prep

    monkeypatch.setattr(importing, "BATCH", 10)  # several batches
    monkeypatch.setattr(prep, "CHUNK", 10)
    seen: list[bool] = []
    real = importing._store_prepared

    def spy(*args: Any, **kw: Any) -> None:
        seen.append(gc.isenabled())
        real(*args, **kw)

    monkeypatch.setattr(importing, "_store_prepared", spy)
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        got = importing.import_items(
            desk, iter_raw_refs([_folder(tmp_path, 30)]), channel="email", workers=1
        )
        after = gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()
    assert got.imported == 30
    assert len(seen) == 3 and not any(seen)  # no automatic collections while batches store
    assert after is enabled
