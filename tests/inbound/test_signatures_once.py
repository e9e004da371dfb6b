"""``signatures.work_out`` folds the text once for both signatures: the same answers as
``signature`` without and with the message's Date."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from supportdesk.channels.base import Attachment, InboundMessage
from supportdesk.inbound.signatures import signature, work_out

_dates = st.one_of(
    st.none(),
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2100, 1, 1)),
    st.datetimes(
        min_value=datetime(1970, 1, 2),
        max_value=datetime(2100, 1, 1),
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=3)), timezone(-timedelta(hours=5))]
        ),
    ),
)


@settings(max_examples=200, deadline=None)
@given(
    sender=st.text(max_size=30),
    subject=st.text(max_size=1200),
    text=st.text(max_size=200),
    quoted=st.text(max_size=50),
    date=_dates,
    files=st.lists(st.tuples(st.text(max_size=10), st.integers(0, 10**6)), max_size=3),
)
def test_same_as_signature(
    sender: str,
    subject: str,
    text: str,
    quoted: str,
    date: datetime | None,
    files: list[tuple[str, int]],
) -> None:
    msg = InboundMessage(
        kind="email",
        external_id="x@y",
        sender_address=sender,
        subject=subject,
        text=text,
        quoted_text=quoted,
        sent_at=date,
        attachments=[
            Attachment(filename=n, content_type="application/octet-stream", size=size)
            for n, size in files
        ],
    )
    cut = subject[:998]
    assert work_out(msg) == (
        signature(sender, cut, text, quoted, None, files),
        signature(sender, cut, text, quoted, date, files),
    )
