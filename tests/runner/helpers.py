"""Desk homes wired to the real test peers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.configs import desk_config, email_channel, telegram_channel
from tests.conftest import write_config


def email_desk_config(imap: Any, smtp: Any, *, extra: str = "", poll_interval: float = 60) -> str:
    sla = '\n[sla]\nfirst_response = "1h"\nresolution = "3d"\n'
    channel = email_channel(imap=imap, smtp=smtp, poll_interval=poll_interval)
    return desk_config(channels=[channel], sla=sla, extra=extra)


def telegram_desk_config(bot: Any, *, extra: str = "") -> str:
    sla = '\n[sla]\nfirst_response = "4h"\n[sla.channel.telegram]\nfirst_response = "5m"\n'
    return desk_config(channels=[telegram_channel(bot)], sla=sla, extra=extra)


def setup_email_home(
    home: Path, imap: Any, smtp: Any, monkeypatch: pytest.MonkeyPatch, **kw: Any
) -> None:
    monkeypatch.setenv("TEST_IMAP_PASSWORD", imap.password)
    write_config(home, email_desk_config(imap, smtp, **kw))


def setup_telegram_home(home: Path, bot: Any, monkeypatch: pytest.MonkeyPatch, **kw: Any) -> None:
    monkeypatch.setenv("TEST_TG_TOKEN", bot.token)
    write_config(home, telegram_desk_config(bot, **kw))
