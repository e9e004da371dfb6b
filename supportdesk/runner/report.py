"""What a runner pass reports (``poll --once --json``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ChannelReport:
    channel: str
    fetched: int = 0
    new_tickets: int = 0
    quarantined: int = 0
    sent: int = 0
    failed: int = 0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class PassReport:
    channels: list[ChannelReport] = field(default_factory=list)
    outbox_sent: int = 0
    outbox_failed: int = 0
    outbox_retrying: int = 0

    @property
    def ok(self) -> bool:
        return all(c.error is None for c in self.channels)

    def as_dict(self) -> dict[str, Any]:
        return {
            "channels": [c.as_dict() for c in self.channels],
            "outbox": {
                "sent": self.outbox_sent,
                "failed": self.outbox_failed,
                "retrying": self.outbox_retrying,
            },
        }
