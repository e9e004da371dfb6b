"""The channel registry: config tables are validated by the model their `type` names."""

from __future__ import annotations

from pathlib import Path

import pytest

from supportdesk.channels.email.channel import EmailChannel, EmailConfig
from supportdesk.channels.registry import channel_class, channel_types, make_channel
from supportdesk.channels.telegram.channel import TelegramChannel, TelegramConfig
from supportdesk.core.config import ConfigError, load_config


def _write(home: Path, text: str) -> None:
    (home / "config.toml").write_text(text, encoding="utf-8")


def test_builtins_are_registered_through_entry_points() -> None:
    assert {"email", "telegram"} <= set(channel_types())
    assert channel_class("email") is EmailChannel
    assert channel_class("telegram") is TelegramChannel


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
