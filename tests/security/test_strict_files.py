"""Strict modes and link-safe files, in one process (any user): the runner refuses a config or a
program that others could write, and the ledger and attachments never follow a planted link.

The same attacks by real Unix users against a shared home are in test_team_host.py."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from supportdesk.core.config import ConfigError
from supportdesk.core.strict import StrictModeError, check_command, read_trusted_config
from supportdesk.store.files import StorageError, store_attachment, store_raw
from tests.conftest import DEFAULT_TEST_CONFIG, write_config


def _runner(home: Path) -> Any:
    from supportdesk.desk.desk import open_desk
    from supportdesk.runner.loop import Runner

    desk = open_desk(home, agent="alice")
    try:
        return Runner(desk)
    finally:
        desk.close()


def test_group_writable_config_is_refused_naming_the_file(home: Path) -> None:
    write_config(home, DEFAULT_TEST_CONFIG)
    os.chmod(home / "config.toml", 0o660)
    with pytest.raises(StrictModeError) as err:
        _runner(home)
    assert str(home / "config.toml") in str(err.value)
    assert "writable by its group" in str(err.value)
    os.chmod(home / "config.toml", 0o640)
    assert _runner(home).desk.config.desk.name == "Acme support"


def test_world_writable_or_linked_config_is_refused(home: Path, tmp_path: Path) -> None:
    write_config(home, DEFAULT_TEST_CONFIG)
    os.chmod(home / "config.toml", 0o602)
    with pytest.raises(StrictModeError, match="writable by everyone"):
        read_trusted_config(home)
    os.chmod(home / "config.toml", 0o600)
    (tmp_path / "elsewhere.toml").write_text(DEFAULT_TEST_CONFIG)
    (home / "config.toml").unlink()
    (home / "config.toml").symlink_to(tmp_path / "elsewhere.toml")
    with pytest.raises(StrictModeError, match="symbolic link"):
        read_trusted_config(home)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the config another owner")
def test_config_owned_by_someone_else_is_refused(home: Path) -> None:
    write_config(home, DEFAULT_TEST_CONFIG)
    os.chown(home / "config.toml", 65534, 65534)  # nobody
    with pytest.raises(StrictModeError, match="is owned by"):
        read_trusted_config(home, uid=4242)


def test_a_cmd_whose_program_others_can_write_is_refused(home: Path, tmp_path: Path) -> None:
    tools = tmp_path / "tools"
    tools.mkdir(mode=0o755)
    os.chmod(tmp_path, 0o755)
    prog = tools / "secret.sh"
    prog.write_text("#!/bin/sh\necho s3cret\n")
    os.chmod(prog, 0o775)  # group-writable: anyone in the group can run code as the runner
    cfg = DEFAULT_TEST_CONFIG.replace(
        'token_env = "TEST_TG_TOKEN"', f'token_cmd = "{prog} --telegram"'
    )
    write_config(home, cfg)
    os.chmod(home / "config.toml", 0o600)
    with pytest.raises(StrictModeError) as err:
        read_trusted_config(home)
    assert str(prog) in str(err.value)
    os.chmod(prog, 0o755)
    os.chmod(tools, 0o777)  # a writable folder lets anyone swap the program
    with pytest.raises(StrictModeError, match="folder above secret.sh"):
        read_trusted_config(home)
    os.chmod(tools, 0o755)
    cfg_ok = read_trusted_config(home)
    assert cfg_ok.channel_named("telegram").token() == "s3cret"
    assert check_command("sh -c true").name in {"sh", "dash"}
    with pytest.raises(ConfigError, match="was not found"):
        check_command("no-such-program-anywhere --x")


def test_a_planted_link_in_attachments_is_refused(home: Path, tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir()
    (home / "attachments").mkdir(mode=0o700)
    (home / "attachments" / "19").symlink_to(private)
    with pytest.raises(StorageError, match="attachments/19 .*symbolic link"):
        store_attachment(home, 19, 0, "report.pdf", b"%PDF")
    assert list(private.iterdir()) == []
    # a link planted as the file itself is replaced, never written through
    target = tmp_path / "victim"
    target.write_text("keep")
    (home / "attachments" / "20").mkdir(mode=0o700)
    (home / "attachments" / "20" / "00-a.txt").symlink_to(target)
    rel = store_attachment(home, 20, 0, "a.txt", b"new")
    assert target.read_text() == "keep"
    assert (home / rel).read_bytes() == b"new" and not (home / rel).is_symlink()
    # temporary names are random and none is left behind
    assert [p.name for p in (home / "attachments" / "20").iterdir()] == ["00-a.txt"]


def test_a_planted_link_in_the_raw_ledger_is_refused(home: Path, tmp_path: Path) -> None:
    import hashlib

    private = tmp_path / "private"
    private.mkdir()
    data = b"From: a@b\r\n\r\nhello\r\n"
    digest = hashlib.sha256(data).hexdigest()
    (home / "raw").mkdir(mode=0o700)
    (home / "raw" / digest[:2]).symlink_to(private)
    with pytest.raises(StorageError, match="symbolic link"):
        store_raw(home, data)
    assert list(private.iterdir()) == []
    (home / "raw" / digest[:2]).unlink()
    assert store_raw(home, data) == digest
    assert (home / "raw" / digest[:2] / digest).read_bytes() == data


def test_the_console_runs_no_runner_on_a_config_it_may_not_trust(home: Path) -> None:
    from supportdesk.desk.desk import open_desk
    from supportdesk.ui.app import _start_runner

    write_config(home, DEFAULT_TEST_CONFIG)
    os.chmod(home / "config.toml", 0o660)
    desk = open_desk(home, agent="alice")
    try:
        assert _start_runner(desk) is None  # the console opens; it just runs no runner
    finally:
        desk.close()
