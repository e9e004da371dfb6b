"""Connectors: talk to mail servers and messengers in plain data.

They never touch the database. They yield :class:`InboundMessage` objects and accept
:class:`OutboundMessage` objects; the runner stores what they return together with their cursor.
"""

from supportdesk.channels.base import (
    Attachment,
    ChannelError,
    InboundMessage,
    OutboundMessage,
    ParseError,
    SendError,
    SendResult,
)

__all__ = [
    "Attachment",
    "ChannelError",
    "InboundMessage",
    "OutboundMessage",
    "ParseError",
    "SendError",
    "SendResult",
]
