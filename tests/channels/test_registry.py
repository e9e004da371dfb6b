"""The channel registry: config tables are validated by the model their `type` names."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from supportdesk.channels.email.channel import EmailChannel, EmailConfig
from supportdesk.channels.registry import channel_class, channel_types, make_channel
from supportdesk.channels.telegram.channel import TelegramChannel, TelegramConfig
from supportdesk.core.channel_types import BUILTIN_CHANNELS, CHANNEL_GROUP, channel_entry_points
from supportdesk.core.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[2]


def _write(home: Path, text: str) -> None:
    (home / "config.toml").write_text(text, encoding="utf-8")


def test_builtins_are_registered_through_entry_points() -> None:
    assert {"email", "telegram"} <= set(channel_types())
    assert channel_class("email") is EmailChannel
    assert channel_class("telegram") is TelegramChannel


def test_builtin_table_is_what_pyproject_registers() -> None:
    """The fast path's table of built-ins and the entry points pyproject.toml declares agree,
    and the installed entry points name the same classes."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    declared = pyproject["project"]["entry-points"][CHANNEL_GROUP]
    assert declared == BUILTIN_CHANNELS
    installed = channel_entry_points()
    for name, target in BUILTIN_CHANNELS.items():
        assert installed[name] == target


def test_builtin_types_do_not_scan_entry_points(tmp_path: Path) -> None:
    """A config of built-in channels validates without reading any distribution's metadata
    (the scan costs every command 40-65 ms of start-up); a third-party type still scans."""
    code = (
        "import importlib.metadata as md, sys\n"
        "scan = md.entry_points\n"
        "def refuse(*a, **k):\n"
        "    if k.get('group') == 'supportdesk.channels':\n"
        "        raise SystemExit('entry points scanned')\n"
        "    return scan(*a, **k)\n"  # pydantic looks up its plugins; that stays
        "md.entry_points = refuse\n"
        "from pathlib import Path\n"
        "from supportdesk.core.config import load_config\n"
        "cfg = load_config(Path(sys.argv[1]))\n"
        "print(','.join(c.type for c in cfg.channel))\n"
    )
    _write(
        tmp_path,
        '[[channel]]\nname = "tg"\ntype = "telegram"\ntoken_env = "TG"\n'
        '[[channel]]\nname = "m"\ntype = "email"\naddress = "a@b.test"\n',
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "telegram,email"
    _write(tmp_path, '[[channel]]\nname = "e"\ntype = "echo"\nspool = "s"\n')
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert "entry points scanned" in done.stderr


def test_each_table_gets_its_own_typed_model(tmp_path: Path) -> None:
    _write(
        tmp_path,
        """
[[channel]]
name = "support"
type = "email"
address = "support@acme.test"
  [channel.imap]
  host = "127.0.0.1"
  port = 993
  password_env = "X"
[[channel]]
name = "tg"
type = "telegram"
token_env = "TG"
greeting = "hi"
""",
    )
    cfg = load_config(tmp_path)
    mail, tg = cfg.channel
    assert isinstance(mail, EmailConfig) and mail.imap is not None and mail.imap.port == 993
    assert isinstance(tg, TelegramConfig) and tg.greeting == "hi" and tg.groups is False
    assert cfg.own_addresses() == {"support@acme.test"}
    ch = make_channel(tg, home=tmp_path, desk_name="Acme")
    assert isinstance(ch, TelegramChannel) and ch.cursor_keys() == ["telegram:offset"]


def test_unknown_type_is_one_sentence_listing_installed_types(tmp_path: Path) -> None:
    _write(tmp_path, '[[channel]]\nname = "x"\ntype = "carrier-pigeon"\n')
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    msg = str(info.value)
    assert "channel.0.type" in msg and "'carrier-pigeon' is not an installed channel type" in msg
    assert "email" in msg and "telegram" in msg and "\n" not in msg


def test_a_key_of_another_type_is_refused_naming_it(tmp_path: Path) -> None:
    _write(tmp_path, '[[channel]]\nname = "x"\ntype = "email"\ntoken_env = "T"\n')
    with pytest.raises(ConfigError, match=r"channel\.0\.token_env"):
        load_config(tmp_path)
    _write(tmp_path, '[[channel]]\nname = "x"\n')
    with pytest.raises(ConfigError, match=r"channel\.0\.type: Field required"):
        load_config(tmp_path)
