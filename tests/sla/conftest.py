"""Fixtures for the SLA, CSAT and metrics tests: a desk in Moscow time with business hours."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.configs import desk_config
from tests.conftest import write_config

MSK = timezone(timedelta(hours=3))

BUSINESS_CONFIG = desk_config(
    timezone="Europe/Moscow",
    hours=True,
    sla="""
[sla]
first_response = "4h"
resolution = "3d"
[sla.channel.email]
first_response = "1h"
[sla.channel.telegram]
first_response = "5m"
[sla.priority.urgent]
first_response = "15m"
""",
    extra="""
[[priority_rule]]
priority = "urgent"
words = ["urgent", "срочно"]

[[priority_rule]]
priority = "high"
customer = "@bigcorp.test"

[[priority_rule]]
priority = "high"
tag = "outage"
""",
)


def msk(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    """A moment in November 2026, Moscow time, as UTC."""
    return datetime(2026, month, day, hour, minute, tzinfo=MSK).astimezone(UTC)


@pytest.fixture
def bdesk(home: Path) -> Iterator[Any]:
    """A desk with business hours (Mon-Fri 09-18 Moscow, Russian holidays) and priority rules."""
    from supportdesk.desk.desk import open_desk

    write_config(home, BUSINESS_CONFIG)
    d = open_desk(home, agent="alice")
    yield d
    d.close()
