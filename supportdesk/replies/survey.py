"""How a survey (CSAT, NPS) reaches a customer, as the ticket's channel declares it."""

from __future__ import annotations

from typing import Literal

from supportdesk.channels.registry import class_for_kind
from supportdesk.store.models import Ticket

Way = Literal["chat", "mail"]


def survey_way(ticket: Ticket) -> Way | None:
    """``"chat"``: a question with inline buttons (a channel with ``buttons``); ``"mail"``: a
    message to answer with a number (a channel with ``subjects``); None: no survey can reach
    this ticket's customer (a phone ticket, a channel with neither)."""
    if not ticket.reply_to_address:
        return None
    cls = class_for_kind(ticket.kind)
    if cls is None:
        return None
    if cls.capabilities.buttons:
        return "chat"
    return "mail" if cls.capabilities.subjects else None
