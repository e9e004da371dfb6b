"""A desk with a small team (alice the lead, bob and carol in billing) and a rules folder."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def write_rules(home: Path, text: str, name: str = "rules.toml") -> Path:
    folder = home / "rules"
    folder.mkdir(exist_ok=True)
    p = folder / name
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    return p


@pytest.fixture
def team(desk: Any) -> Iterator[Any]:
    from supportdesk.automation import engine
    from supportdesk.people.agents import add_agent
    from supportdesk.people.groups import add_group
    from supportdesk.replies.templates import add_template

    add_agent(desk, "alice", role="lead")
    add_group(desk, "billing")
    add_group(desk, "escalations")
    add_agent(desk, "bob", group="billing")
    add_agent(desk, "carol", group="billing")
    add_template(
        desk, "reminder", "Hello {{ customer.name }}, is ticket #{{ ticket.id }} still an issue?"
    )
    add_template(desk, "refund-done", "Your refund for #{{ ticket.id }} is on its way.")
    engine.process(desk)  # switches automation on: the cursor starts after this history
    yield desk
