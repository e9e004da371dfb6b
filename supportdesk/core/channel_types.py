"""Where each channel type's class lives: the built-ins by name, third-party ones through the
``supportdesk.channels`` entry-point group. Imports nothing heavy (no importlib.metadata until a
type is not built in).
"""

from __future__ import annotations

import functools
from typing import Any

CHANNEL_GROUP = "supportdesk.channels"

# The built-in channel types, exactly as pyproject.toml registers them in the entry-point group
# (tests/channels/test_registry.py checks that the two agree). A config naming only these types
# never scans the installed distributions' entry points, which costs 40-65 ms of start-up;
# a type not listed here (a third-party channel) is looked up in the group.
BUILTIN_CHANNELS = {
    "email": "supportdesk.channels.email.channel:EmailChannel",
    "telegram": "supportdesk.channels.telegram.channel:TelegramChannel",
    "vk": "supportdesk.channels.vk.channel:VkChannel",
    "whatsapp": "supportdesk.channels.whatsapp.channel:WhatsAppChannel",
    "web": "supportdesk.channels.web.channel:WebChannel",
}


@functools.cache
def channel_entry_points() -> dict[str, str]:
    """The channel types installed through the ``supportdesk.channels`` entry-point group:
    name -> ``module:attribute``. Scans every installed distribution's metadata."""
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in entry_points(group=CHANNEL_GROUP)}


def installed_channel_types() -> list[str]:
    """Every channel type: the built-ins and those installed through the entry points, sorted."""
    return sorted(set(BUILTIN_CHANNELS) | set(channel_entry_points()))


def channel_target(type_: str) -> str | None:
    """Where the Channel class of ``type_`` lives (``module:attribute``); None when no channel
    of that type is installed. A built-in type is answered without scanning entry points."""
    return BUILTIN_CHANNELS.get(type_) or channel_entry_points().get(type_)


def load_target(target: str) -> Any:
    """The object a ``module:attribute`` reference names (what ``EntryPoint.load`` does)."""
    import importlib

    module, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module.strip())
    for part in attr.strip().split(".") if attr.strip() else []:
        obj = getattr(obj, part)
    return obj
