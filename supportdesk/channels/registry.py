"""The channel registry: every channel type, built-in or third-party, is an entry point in the
``supportdesk.channels`` group naming its :class:`~supportdesk.channels.base.Channel` class.

A package adds a channel with, in its pyproject.toml::

    [project.entry-points."supportdesk.channels"]
    echo = "echo_channel:EchoChannel"
"""

from __future__ import annotations

import functools
from pathlib import Path

from supportdesk.channels.base import Channel
from supportdesk.core.config import (
    ChannelConfigBase,
    ConfigError,
    channel_entry_points,
    channel_type_error,
)


def channel_types() -> list[str]:
    """The installed channel types, sorted."""
    return sorted(channel_entry_points())


@functools.cache
def channel_class(type_: str) -> type[Channel]:
    """The Channel class registered for ``type_``; ConfigError naming what is installed."""
    ep = channel_entry_points().get(type_)
    if ep is None:
        raise ConfigError(channel_type_error(type_))
    try:
        cls = ep.load()
    except Exception as exc:  # a broken third-party package: one sentence, not a traceback
        raise ConfigError(
            f"the channel type {type_!r} ({ep.value}) cannot be loaded: {exc}"
        ) from None
    if not (isinstance(cls, type) and issubclass(cls, Channel)):
        raise ConfigError(f"the channel type {type_!r} ({ep.value}) is not a Channel class")
    return cls


def is_push(type_: str) -> bool:
    """The channel type serves (a listener calling the inbound sink) instead of being polled."""
    return channel_class(type_).serve is not Channel.serve


def make_channel(config: ChannelConfigBase, *, home: Path, desk_name: str) -> Channel:
    """A Channel object for one configured ``[[channel]]`` table."""
    return channel_class(config.type)(config, home=home, desk_name=desk_name)
