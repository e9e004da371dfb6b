"""The tables. Times are stored as UTC and come back as aware datetimes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from supportdesk.core.terms import (  # the vocabulary lives in core; the tables use it
    OPEN_STATUSES as OPEN_STATUSES,
)
from supportdesk.core.terms import PRIORITIES as PRIORITIES
from supportdesk.core.terms import PRIORITY_RANK as PRIORITY_RANK
from supportdesk.core.terms import STATUSES as STATUSES
from supportdesk.core.terms import utcnow as utcnow
from supportdesk.store.reads import sqlite_utc_text as sqlite_utc_text  # moved: the quick path


class UTCDateTime(TypeDecorator[datetime]):
    """Naive UTC in the database, aware UTC in Python, on SQLite and PostgreSQL alike."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


def dt_field(*, index: bool = False, nullable: bool = True, default_now: bool = False) -> Any:
    kw: dict[str, Any] = {"sa_type": UTCDateTime, "nullable": nullable, "index": index}
    if default_now:
        kw["default_factory"] = utcnow
    else:
        kw["default"] = None
    return Field(**kw)


class Agent(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True)
    display_name: str = ""
    role: str = "agent"  # agent | lead
    email: str | None = None
    group: str | None = None
    active: bool = True
    signature: str = ""  # JSON {"en": "...", "ru": "..."}: appended to this agent's replies
    created_at: datetime = dt_field(nullable=False, default_now=True)


class Customer(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = ""
    company: str = ""
    phone: str = ""
    language: str = ""
    notes: str = ""
    csat_opt_out: bool = False
    merged_into_id: int | None = Field(default=None, foreign_key="customer.id", index=True)
    created_at: datetime = dt_field(nullable=False, default_now=True)
    updated_at: datetime = dt_field(nullable=False, default_now=True)


class Identity(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("kind", "address", name="uq_identity_kind_address"),)
    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    kind: str  # email | telegram | phone
    address: str  # normalized
    display: str = ""  # as seen (name, @username)
    created_at: datetime = dt_field(nullable=False, default_now=True)


def _not_null_indexes(table: str, *columns: str) -> list[sa.Index]:
    """``ix_<table>_<column>`` over the rows where the column is set (migration 0016): columns a
    new row leaves NULL, whose readers all compare them (``=``, ``IN``, a range, ``IS NOT
    NULL``), which on both backends implies the condition."""
    out = []
    for c in columns:
        where = sa.text(f'"{c}" IS NOT NULL')
        out.append(sa.Index(f"ix_{table}_{c}", c, sqlite_where=where, postgresql_where=where))
    return out


class Ticket(SQLModel, table=True):
    __table_args__ = (
        sa.Index("ix_ticket_status_created", "status", "created_at"),  # the report's backlog
        sa.Index("ix_ticket_status_due", "status", "due_at"),  # the "SLA at risk" count
        sa.Index(
            "ix_ticket_left_out",
            "status",
            "created_at",
            sqlite_where=sa.text("spam OR substr(reply_to_address, 1, 7) = 'merged:'"),
            postgresql_where=sa.text("spam OR substr(reply_to_address, 1, 7) = 'merged:'"),
        ),
        sa.Index(  # the report's counts (migration 0010, store/report_sql): a covering index
            "ix_ticket_report",
            *"created_at status channel priority assignee_id first_response_due_at".split(),
            *"resolution_due_at first_response_at solved_at closed_at csat_score".split(),
            *"csat_requested_at spam reply_to_address".split(),
        ),
        sa.Index(  # the report's counts per channel, priority, assignee (migration 0012)
            "ix_ticket_report_by",
            *"channel priority assignee_id created_at status first_response_due_at".split(),
            *"resolution_due_at first_response_at solved_at closed_at spam".split(),
            "reply_to_address",
        ),
        *_not_null_indexes(
            "ticket",
            "assignee_id",
            "group",
            "solved_at",
            "closed_at",
            "csat_requested_at",
            "snoozed_until",
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    subject: str = ""
    # no index of their own (migration 0016): status leads ix_ticket_status_created and
    # ix_ticket_status_due, priority_rank ix_ticket_queue, channel ix_ticket_report_by,
    # created_at ix_ticket_report; priority (views count it on the ticket tally) and
    # sla_breached (filtered only with other conditions) need none
    status: str = "new"
    priority: str = "normal"
    priority_rank: int = 1  # for sorting: urgent first
    priority_locked: bool = False  # a lead set it by hand: rules leave it alone
    channel: str = ""  # configured channel name
    kind: str = "email"  # email | telegram | phone
    customer_id: int = Field(foreign_key="customer.id", index=True)
    assignee_id: int | None = Field(default=None, foreign_key="agent.id")  # (partial index)
    group: str | None = None  # (partial index)
    created_at: datetime = dt_field(nullable=False, default_now=True)
    updated_at: datetime = dt_field(nullable=False, default_now=True, index=True)
    first_response_at: datetime | None = dt_field()
    solved_at: datetime | None = dt_field()  # (partial index)
    closed_at: datetime | None = dt_field()  # (partial index)
    last_customer_at: datetime | None = dt_field()
    last_agent_at: datetime | None = dt_field()
    first_response_due_at: datetime | None = dt_field(index=True)
    resolution_due_at: datetime | None = dt_field(index=True)
    due_at: datetime | None = dt_field(index=True)  # the next SLA deadline that applies
    sla_paused_seconds: int = 0
    sla_paused_since: datetime | None = dt_field()
    sla_breached: bool = False
    snoozed_until: datetime | None = dt_field()  # (partial index)
    message_count: int = 0
    last_message_id: int | None = None
    ack_sent: bool = False
    csat_score: int | None = None
    csat_comment: str | None = None
    csat_requested_at: datetime | None = dt_field()  # (partial index)
    # telegram chat (or e-mail address) the conversation runs in
    reply_to_address: str = ""
    spam: bool = False


class Message(SQLModel, table=True):
    __table_args__ = (sa.Index("ix_message_ticket_created", "ticket_id", "created_at"),)
    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id")  # ix_message_ticket_created covers it
    direction: str  # in | out | note
    channel: str = ""
    kind: str = "email"
    author: str = ""  # display name
    author_address: str = ""
    customer_id: int | None = Field(default=None, foreign_key="customer.id", index=True)
    agent_id: int | None = Field(default=None, foreign_key="agent.id")
    dedupe_key: str | None = Field(default=None, unique=True)
    message_id: str | None = Field(default=None, index=True)  # RFC Message-ID / tg:chat:id
    in_reply_to: str | None = None
    references: str = ""  # space-separated
    subject: str = ""
    text: str = ""
    quoted_text: str = ""
    html: str | None = None
    created_at: datetime = dt_field(nullable=False, default_now=True)
    received_at: datetime = dt_field(nullable=False, default_now=True)
    thread_reason: str = ""
    raw_sha256: str | None = None
    auto_reason: str = ""
    edited_at: datetime | None = dt_field()
    versions: str = ""  # JSON list of previous texts of an edited message
    is_auto: bool = False  # acknowledgement, survey: not a first response
    # e-mail recipients, space-separated normalized addresses: an inbound message's To/Cc make
    # the thread's participants (reply-all); an outbound one records where it went (Bcc too)
    to_addresses: str = ""
    cc_addresses: str = ""
    bcc_addresses: str = ""


class AttachmentRow(SQLModel, table=True):
    __tablename__ = "attachment"
    id: int | None = Field(default=None, primary_key=True)
    message_id: int | None = Field(default=None, foreign_key="message.id", index=True)
    outbox_id: int | None = Field(default=None, index=True)
    filename: str  # the original name, data only
    stored_path: str | None = None  # relative to the home; None when not downloaded
    size: int = 0
    content_type: str = "application/octet-stream"
    sha256: str | None = None
    note: str | None = None
    inline: bool = False


class Tag(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True)


class TicketTag(SQLModel, table=True):
    __tablename__ = "ticket_tag"
    ticket_id: int = Field(foreign_key="ticket.id", primary_key=True)
    tag_id: int = Field(foreign_key="tag.id", primary_key=True, index=True)


class Template(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True)
    subject: str = ""
    body: str = ""
    tags: str = ""  # comma-separated
    language: str = ""
    usage_count: int = 0
    created_at: datetime = dt_field(nullable=False, default_now=True)
    updated_at: datetime = dt_field(nullable=False, default_now=True)


class KbArticle(SQLModel, table=True):
    __tablename__ = "kb_article"
    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(unique=True, index=True)
    title: str
    body: str = ""  # Markdown
    tags: str = ""  # comma-separated
    public: bool = False
    language: str = ""
    created_at: datetime = dt_field(nullable=False, default_now=True)
    updated_at: datetime = dt_field(nullable=False, default_now=True)


class Event(SQLModel, table=True):
    """The audit log: who did what, when, with the before and after."""

    __table_args__ = (
        sa.Index("ix_event_ticket_created", "ticket_id", "created_at"),
        sa.Index("ix_event_kind_created", "kind", "created_at"),  # reports: a kind in a period
        *_not_null_indexes("event", "batch"),
    )
    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int | None = None  # ix_event_ticket_created covers it
    customer_id: int | None = Field(default=None, index=True)
    message_id: int | None = None
    agent: str = ""  # agent name or "system"
    kind: str  # created, message_in, reply, note, assign, status, ... (ix_event_kind_created)
    data: str = "{}"  # JSON: {"before":..., "after":..., ...}
    batch: str | None = None  # a journal entry for undo (partial index)
    created_at: datetime = dt_field(nullable=False, default_now=True, index=True)


class Journal(SQLModel, table=True):
    """One undoable action (possibly over many tickets)."""

    id: int | None = Field(default=None, primary_key=True)
    batch: str = Field(unique=True)
    agent: str = ""
    description: str = ""
    created_at: datetime = dt_field(nullable=False, default_now=True)
    undone_at: datetime | None = dt_field()


class Cursor(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("channel", "key", name="uq_cursor_channel_key"),)
    id: int | None = Field(default=None, primary_key=True)
    channel: str
    key: str  # e.g. "imap:INBOX" or "telegram:offset"
    value: str  # JSON
    updated_at: datetime = dt_field(nullable=False, default_now=True)


class ChannelState(SQLModel, table=True):
    __tablename__ = "channel_state"
    channel: str = Field(primary_key=True)
    last_success_at: datetime | None = dt_field()
    last_error_at: datetime | None = dt_field()
    last_error: str = ""
    last_poll_at: datetime | None = dt_field()
    failures: int = 0
    next_try_at: datetime | None = dt_field()


class Outbox(SQLModel, table=True):
    __table_args__ = (sa.Index("ix_outbox_state_next", "state", "next_attempt_at"),)
    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id", index=True)
    message_id: int | None = Field(default=None, foreign_key="message.id", index=True)
    channel: str
    kind: str = "email"
    to_address: str = ""
    state: str = "queued"  # queued | sending | sent | failed | cancelled | in_doubt
    attempts: int = 0
    next_attempt_at: datetime | None = dt_field()
    last_error: str = ""
    external_message_id: str = ""  # generated before the first attempt: one id for all retries
    sent_parts: int = 0
    payload: str = "{}"  # JSON: subject, in_reply_to, references, auto, buttons
    created_at: datetime = dt_field(nullable=False, default_now=True)
    sent_at: datetime | None = dt_field(index=True)
    lease_until: datetime | None = dt_field()
    # the runner lease epoch of the claim (a fencing token): only that epoch may mark the row
    claim_epoch: int | None = None
    # set right before the point of no return (SMTP end of DATA, the Bot API request): a claim
    # interrupted after this may have been delivered; before it, it surely was not
    in_flight_at: datetime | None = dt_field()


class Quarantine(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    channel: str = ""
    source: str = ""  # file path, imap folder/uid, telegram update
    raw_sha256: str = Field(index=True)
    error: str = ""
    created_at: datetime = dt_field(nullable=False, default_now=True)
    resolved_at: datetime | None = dt_field()
    attempts: int = 1


class Presence(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("ticket_id", "agent", name="uq_presence"),)
    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(index=True)
    agent: str
    activity: str = "viewing"  # viewing | replying
    expires_at: datetime = dt_field(nullable=False, default_now=True)


class Lease(SQLModel, table=True):
    """Named leases: the one runner per desk."""

    name: str = Field(primary_key=True)
    holder: str = ""
    pid: int = 0
    host: str = ""
    heartbeat_at: datetime | None = dt_field()
    expires_at: datetime | None = dt_field()
    # a fencing token: +1 on every change of holder, never reused
    epoch: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class SavedView(SQLModel, table=True):
    __tablename__ = "saved_view"
    __table_args__ = (sa.UniqueConstraint("agent", "name", name="uq_view"),)
    id: int | None = Field(default=None, primary_key=True)
    agent: str = ""  # "" = shared by the desk
    name: str
    query: str
    position: int = 0


class AckLog(SQLModel, table=True):
    """Automatic replies sent per address, to keep mail loops impossible."""

    __tablename__ = "ack_log"
    id: int | None = Field(default=None, primary_key=True)
    address: str = Field(index=True)
    sent_at: datetime = dt_field(nullable=False, default_now=True, index=True)


class Meta(SQLModel, table=True):
    key: str = Field(primary_key=True)
    value: str = ""


class Group(SQLModel, table=True):
    """A line or team (first-line, second-line, billing); a ticket belongs to one group."""

    __tablename__ = "desk_group"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True)
    title: str = ""
    description: str = ""
    created_at: datetime = dt_field(nullable=False, default_now=True)
