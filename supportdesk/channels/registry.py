"""The channel registry: every channel type, built-in or third-party, is an entry point in the
``supportdesk.channels`` group naming its :class:`~supportdesk.channels.base.Channel` class.

A package adds a channel with, in its pyproject.toml::

    [project.entry-points."supportdesk.channels"]
    echo = "echo_channel:EchoChannel"
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

from supportdesk.channels.base import Channel
from supportdesk.core.channel_types import channel_target, installed_channel_types, load_target
from supportdesk.core.config import ChannelConfigBase, Config, ConfigError, channel_type_error


def channel_types() -> list[str]:
    """The installed channel types, sorted (this one scans the entry points)."""
    return installed_channel_types()


@functools.cache
def channel_class(type_: str) -> type[Channel]:
    """The Channel class registered for ``type_``; ConfigError naming what is installed.
    A built-in type is found without scanning the entry points."""
    target = channel_target(type_)
    if target is None:
        raise ConfigError(channel_type_error(type_))
    try:
        cls = load_target(target)
    except Exception as exc:  # a broken third-party package: one sentence, not a traceback
        raise ConfigError(
            f"the channel type {type_!r} ({target}) cannot be loaded: {exc}"
        ) from None
    if not (isinstance(cls, type) and issubclass(cls, Channel)):
        raise ConfigError(f"the channel type {type_!r} ({target}) is not a Channel class")
    return cls


def is_push(type_: str) -> bool:
    """The channel type serves (a listener calling the inbound sink) instead of being polled."""
    return channel_class(type_).serve is not Channel.serve


@functools.cache
def class_for_kind(kind: str) -> type[Channel] | None:
    """The installed channel class whose customers' address kind is ``kind`` (None: a phone
    ticket, or no installed channel speaks that kind). A type named like the kind is asked
    first, so a built-in does not load every other channel."""

    # the type named like the kind first: a built-in answers without scanning entry points
    def candidates() -> Iterator[str]:
        if channel_target(kind) is not None:
            yield kind
        yield from (t for t in installed_channel_types() if t != kind)

    for type_ in candidates():
        try:
            cls = channel_class(type_)
        except ConfigError:  # a broken third-party package does not hide the others
            continue
        if cls.identity_kind == kind:
            return cls
    return None


def configured_class(config: Config, channel: str, kind: str = "") -> type[Channel] | None:
    """The class of the configured channel named ``channel``; else (a channel no longer
    configured) the class speaking ``kind``; None when there is neither."""
    for ch in config.channel:
        if ch.name == channel:
            return channel_class(ch.type)
    return class_for_kind(kind) if kind else None


def channel_kind(config: ChannelConfigBase) -> str:
    """The customers' address kind of a configured channel (its class's ``identity_kind``)."""
    return channel_class(config.type).identity_kind


def make_channel(config: ChannelConfigBase, *, home: Path, desk_name: str) -> Channel:
    """A Channel object for one configured ``[[channel]]`` table."""
    return channel_class(config.type)(config, home=home, desk_name=desk_name)
