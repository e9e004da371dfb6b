"""config.toml: read with tomllib, validated with pydantic, written with comments kept.

Secrets (passwords, bot tokens) are never stored here as values that reach the database or
logs: a channel names an environment variable (``*_env``) or a command (``*_cmd``) that
prints the secret.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import subprocess
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from supportdesk.core.channel_types import (
    BUILTIN_CHANNELS,
    channel_target,
    installed_channel_types,
    load_target,
)
from supportdesk.core.errors import ConfigError as ConfigError  # moved: light modules raise it
from supportdesk.core.locations import config_path, file_mode

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """'5m', '1h', '3d', '90s', '1.5h' -> timedelta; ValueError with a clear sentence."""
    m = _DURATION.match(str(text))
    if not m:
        raise ValueError(f"{text!r} is not a duration such as 15m, 4h or 3d")
    return timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Secret(Strict):
    """Where a secret comes from; resolved only when needed."""

    def _resolve(self, value_env: str | None, value_cmd: str | None, what: str) -> str | None:
        if value_env:
            val = os.environ.get(value_env)
            if val is None:
                raise ConfigError(f"the environment variable {value_env} for the {what} is not set")
            return val
        if value_cmd:
            try:
                out = subprocess.run(
                    shlex.split(value_cmd), capture_output=True, text=True, timeout=30, check=False
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise ConfigError(f"the command for the {what} could not run: {exc}") from None
            if out.returncode != 0:
                raise ConfigError(f"the command for the {what} exited with {out.returncode}")
            return out.stdout.rstrip("\n")
        return None


class ServerConfig(Secret):
    host: str
    port: int
    security: Literal["ssl", "starttls", "none"] = "ssl"
    username: str | None = None
    password_env: str | None = None
    password_cmd: str | None = None
    folders: list[str] = Field(default_factory=lambda: ["INBOX"])
    timeout: float = Field(default=30, gt=0)  # seconds to wait for each answer (data)
    # seconds to open the connection (and get the greeting); unset: the timeout, at most 10 s
    connect_timeout: float | None = Field(default=None, gt=0)

    def connect_seconds(self) -> float:
        return self.connect_timeout or min(self.timeout, 10.0)

    def password(self) -> str | None:
        return self._resolve(self.password_env, self.password_cmd, f"password of {self.host}")


class HoursConfig(Strict):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    always: bool = False  # open around the clock (a channel's hours overriding the desk's)
    holidays: str | None = None
    extra_holidays: list[str] = Field(default_factory=list)

    def weekly(self) -> dict[str, str]:
        """The 'mon-fri = "09:00-18:00"' style entries."""
        return {k: str(v) for k, v in (self.model_extra or {}).items()}


class ChannelConfigBase(Secret):
    """The keys every ``[[channel]]`` table has. Each channel type subclasses it with
    ``type: Literal["..."]`` and its own fields (its ``Channel.config_model``); ``Config.channel``
    validates every table with the model its ``type`` names in the registry (a tagged union)."""

    name: str
    type: str
    display_name: str | None = None
    acknowledge: bool = True  # send the automatic acknowledgement on a new ticket
    greeting: str | None = None  # answer to a conversation's opening (Telegram /start)
    hours: HoursConfig | None = None  # this channel's business hours; absent = the desk's
    # a reply whose send may have happened before a crash: "ask" an agent (outbox resend/drop),
    # or "resend" at once. Unset: resend where a resend cannot deliver twice (the channel's
    # Capabilities.idempotent_send: e-mail's Message-ID), ask everywhere else.
    in_doubt: Literal["ask", "resend"] | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}", v):
            raise ValueError("a channel name is 1-40 letters, digits, '-', '_' or '.'")
        return v

    def own_addresses(self) -> list[str]:
        """The desk's own addresses on this channel (mail from them is never a ticket)."""
        return []

    def from_address(self) -> str:
        """The address replies on this channel go out from ("" when it has none)."""
        return ""


def channel_type_error(type_: object) -> str:
    installed = ", ".join(installed_channel_types()) or "none"
    return f"{type_!r} is not an installed channel type (installed: {installed})"


@functools.cache
def channel_config_model(type_: str) -> type[ChannelConfigBase]:
    """The config model of channel type ``type_``; ConfigError when none is installed."""
    target = channel_target(type_)
    if target is None:
        raise ConfigError(channel_type_error(type_))
    try:
        model = load_target(target).config_model
    except Exception as exc:  # a broken third-party package: one sentence, not a traceback
        raise ConfigError(
            f"the channel type {type_!r} ({target}) cannot be loaded: {exc}"
        ) from None
    if not (isinstance(model, type) and issubclass(model, ChannelConfigBase)):
        raise ConfigError(f"the channel type {type_!r} has no config model")
    return model


def _validate_channel(index: int, item: Any) -> ChannelConfigBase:
    """One ``[[channel]]`` table through the model its ``type`` names; errors keep the table's
    index in their location (``channel.0.imap.host``)."""
    if isinstance(item, ChannelConfigBase):
        return item
    model = ChannelConfigBase  # without a type, the base model names the missing key
    if isinstance(item, dict) and "type" in item:
        try:
            model = channel_config_model(str(item["type"]))
        except ConfigError as exc:
            custom = PydanticCustomError("channel_type", str(exc))
            raise ValidationError.from_exception_data(
                "Config", [{"type": custom, "loc": (index, "type"), "input": item["type"]}]
            ) from None
    try:
        return model.model_validate(item)
    except ValidationError as exc:
        errors: list[Any] = []
        for err in exc.errors():
            e: dict[str, Any] = {"type": err["type"], "loc": (index, *err["loc"])}
            e["input"] = err.get("input")
            if "ctx" in err:
                e["ctx"] = err["ctx"]
            errors.append(e)
        raise ValidationError.from_exception_data("Config", errors) from None


class DeskConfig(Strict):
    name: str = "Support"
    timezone: str = "UTC"
    language: str | None = None  # console language: en or ru; default from LANG
    hours: HoursConfig | None = None
    database_url: str | None = None
    ack_template: str = "acknowledgement"
    ack_limit_per_hour: int = 3
    keymap: dict[str, str] = Field(default_factory=dict)
    kb_url: str | None = None  # where `kb export --html` is published: public articles link there


class SlaTargets(Strict):
    first_response: str | None = None
    resolution: str | None = None

    @field_validator("first_response", "resolution")
    @classmethod
    def _dur(cls, v: str | None) -> str | None:
        if v is not None:
            parse_duration(v)
        return v


class SlaConfig(Strict):
    first_response: str = "4h"
    resolution: str = "3d"
    channel: dict[str, SlaTargets] = Field(default_factory=dict)
    priority: dict[str, SlaTargets] = Field(default_factory=dict)

    @field_validator("first_response", "resolution")
    @classmethod
    def _dur(cls, v: str) -> str:
        parse_duration(v)
        return v


class NpsConfig(Strict):
    """The NPS survey: once per customer every ``every`` (absent = no survey), sent ``after``
    a ticket of theirs was solved."""

    every: str | None = None
    after: str = "1d"

    @field_validator("every", "after")
    @classmethod
    def _dur(cls, v: str | None) -> str | None:
        if v is not None:
            parse_duration(v)
        return v


class PriorityRule(Strict):
    priority: Literal["low", "normal", "high", "urgent"]
    channel: str | None = None
    tag: str | None = None
    customer: str | None = None
    words: list[str] = Field(default_factory=list)


class Config(Strict):
    desk: DeskConfig = Field(default_factory=DeskConfig)
    channel: list[ChannelConfigBase] = Field(default_factory=list)
    sla: SlaConfig = Field(default_factory=SlaConfig)
    nps: NpsConfig = Field(default_factory=NpsConfig)
    priority_rule: list[PriorityRule] = Field(default_factory=list)
    # [signatures.<channel name>] en = "...", ru = "...": added under every reply on that channel
    signatures: dict[str, dict[str, str]] = Field(default_factory=dict)

    @field_validator("channel", mode="before")
    @classmethod
    def _channels(cls, v: Any) -> Any:
        if not isinstance(v, list):
            return v
        return [_validate_channel(i, item) for i, item in enumerate(v)]

    def channel_named(self, name: str) -> ChannelConfigBase:
        for ch in self.channel:
            if ch.name == name:
                return ch
        known = ", ".join(c.name for c in self.channel) or "none"
        raise ConfigError(f"there is no channel named {name!r} (configured: {known})")

    def own_addresses(self) -> set[str]:
        out: set[str] = set()
        for ch in self.channel:
            out.update(a.strip().lower() for a in ch.own_addresses())
        return out


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    return f"{where}: {err['msg']}"


def load_config(home: Path) -> Config:
    """Read and validate config.toml; a missing file gives the defaults."""
    path = config_path(home)
    if not path.exists():
        return Config()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} cannot be read: {exc}") from None
    cfg = config_from_text(text, path)
    from supportdesk.core.quickconfig import certify

    certify(home, text, [c.type for c in cfg.channel], set(BUILTIN_CHANNELS), cfg.own_addresses())
    return cfg


def config_from_text(text: str, path: Path) -> Config:
    """Parse and validate the text of config.toml (``path`` names it in errors)."""
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_first_error(exc)}") from None
    names = [c.name for c in cfg.channel]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ConfigError(f"{path}: channel name {sorted(dup)[0]!r} is used twice")
    return cfg


DEFAULT_CONFIG = """\
# supportdesk configuration. Secrets never go in this file's values: name an environment
# variable (*_env) or a command that prints the secret (*_cmd).

[desk]
name = "Support"
timezone = "UTC"            # the desk's time zone for business hours and reports
# language = "ru"           # console language (en, ru); default from LANG
# database_url = "postgresql+psycopg://desk@db.example/desk"   # default: SQLite in this home

# [desk.hours]              # business hours for SLA clocks; absent = around the clock
# mon-fri = "09:00-18:00"
# holidays = "RU"           # a country calendar
# extra_holidays = ["2026-12-31"]

# [[channel]]
# name = "support"
# type = "email"
# address = "support@example.com"
#   [channel.imap]
#   host = "imap.example.com"
#   port = 993
#   security = "ssl"        # ssl | starttls | none (none only for loopback)
#   username = "support@example.com"
#   password_cmd = "pass show support/imap"
#   folders = ["INBOX"]
#   [channel.smtp]
#   host = "smtp.example.com"
#   port = 587
#   security = "starttls"
#   username = "support@example.com"
#   password_env = "SUPPORT_SMTP_PASSWORD"

# [[channel]]
# name = "telegram"
# type = "telegram"
# token_env = "SUPPORT_TG_TOKEN"
# api_url = "https://api.telegram.org/bot"
#   [channel.hours]         # this channel's hours; absent = the desk's [desk.hours]
#   always = true           # messengers: around the clock

[sla]
first_response = "4h"
resolution = "3d"
# [sla.channel.telegram]
# first_response = "5m"
# [sla.priority.urgent]
# first_response = "15m"

# [nps]                     # "how likely are you to recommend us?" 0-10, once per customer
# every = "90d"             # absent = no NPS survey
# after = "1d"              # sent this long after a ticket of theirs was solved
"""


def write_default_config(home: Path) -> Path:
    path = config_path(home)
    if path.exists():
        return path
    # never group-writable, even in a shared home: whoever can write it runs code as the runner
    mode = file_mode(home) & ~0o022
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    os.fchmod(fd, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(DEFAULT_CONFIG)
    return path
