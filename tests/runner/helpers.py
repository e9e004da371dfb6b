"""Desk homes wired to the real test peers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_config


def email_desk_config(imap: Any, smtp: Any, *, extra: str = "", poll_interval: float = 60) -> str:
    return f"""
[desk]
name = "Acme support"
timezone = "UTC"

[[channel]]
name = "support"
type = "email"
address = "support@acme.test"
poll_interval = {poll_interval}
  [channel.imap]
  host = "{imap.host}"
  port = {imap.port}
  security = "none"
  username = "{imap.username}"
  password_env = "TEST_IMAP_PASSWORD"
  timeout = 10
  [channel.smtp]
  host = "{smtp.host}"
  port = {smtp.port}
  security = "none"
  timeout = 5

[sla]
first_response = "1h"
resolution = "3d"
{extra}
"""


def telegram_desk_config(bot: Any, *, extra: str = "") -> str:
    return f"""
[desk]
name = "Acme support"
timezone = "UTC"

[[channel]]
name = "telegram"
type = "telegram"
token_env = "TEST_TG_TOKEN"
api_url = "{bot.api_url}"
file_url = "{bot.file_url}"

[sla]
first_response = "4h"
[sla.channel.telegram]
first_response = "5m"
{extra}
"""


def setup_email_home(
    home: Path, imap: Any, smtp: Any, monkeypatch: pytest.MonkeyPatch, **kw: Any
) -> None:
    monkeypatch.setenv("TEST_IMAP_PASSWORD", imap.password)
    write_config(home, email_desk_config(imap, smtp, **kw))


def setup_telegram_home(home: Path, bot: Any, monkeypatch: pytest.MonkeyPatch, **kw: Any) -> None:
    monkeypatch.setenv("TEST_TG_TOKEN", bot.token)
    write_config(home, telegram_desk_config(bot, **kw))
