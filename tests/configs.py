"""The config.toml every test desk starts from, built from a few parts (one copy, not four).

``desk_config()`` is the default desk: e-mail and Telegram channels with no servers, UTC, the
usual SLA targets. Tests that need real peers, business hours or other targets pass the parts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

BUSINESS_HOURS = """
[desk.hours]
mon-fri = "09:00-18:00"
holidays = "RU"
"""

DEFAULT_SLA = """
[sla]
first_response = "4h"
resolution = "3d"
[sla.channel.telegram]
first_response = "5m"
"""


def email_channel(
    *,
    imap: Any = None,
    smtp: Any = None,
    smtp_host: str = "127.0.0.1",
    smtp_port: int | None = None,
    smtp_timeout: float = 5,
    poll_interval: float | None = None,
) -> str:
    """The "support" e-mail channel; with servers when the peers (or an SMTP port) are given."""
    out = '\n[[channel]]\nname = "support"\ntype = "email"\naddress = "support@acme.test"\n'
    if poll_interval is not None:
        out += f"poll_interval = {poll_interval}\n"
    if imap is not None:
        out += (
            f'  [channel.imap]\n  host = "{imap.host}"\n  port = {imap.port}\n'
            f'  security = "none"\n  username = "{imap.username}"\n'
            '  password_env = "TEST_IMAP_PASSWORD"\n  timeout = 10\n'
        )
    if smtp is not None:
        smtp_host, smtp_port = smtp.host, smtp.port
    if smtp_port is not None:
        out += (
            f'  [channel.smtp]\n  host = "{smtp_host}"\n  port = {smtp_port}\n'
            f'  security = "none"\n  timeout = {smtp_timeout}\n'
        )
    return out


def telegram_channel(bot: Any = None) -> str:
    """The "telegram" channel; pointed at the Bot API stand-in when it is given."""
    out = '\n[[channel]]\nname = "telegram"\ntype = "telegram"\ntoken_env = "TEST_TG_TOKEN"\n'
    if bot is not None:
        out += f'api_url = "{bot.api_url}"\nfile_url = "{bot.file_url}"\n'
    return out


def desk_config(
    *,
    name: str = "Acme support",
    timezone: str = "UTC",
    language: str | None = None,
    hours: bool = False,
    channels: Sequence[str] | None = None,
    sla: str = DEFAULT_SLA,
    extra: str = "",
) -> str:
    out = f'\n[desk]\nname = "{name}"\ntimezone = "{timezone}"\n'
    if language:
        out += f'language = "{language}"\n'
    if hours:
        out += BUSINESS_HOURS
    for ch in (email_channel(), telegram_channel()) if channels is None else channels:
        out += ch
    return out + sla + extra
