"""Free words find tags, customer names and attachment names, not only subjects and text."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.factories import Attachment, inbound_email, ingest


def _ids(cli: Callable[..., Any], *query: str) -> list[int]:
    res = cli("tickets", "list", *query, "--json")
    assert res.exit_code == 0, res.stderr
    return sorted(t["id"] for t in json.loads(res.stdout))


def test_tags_names_and_attachments_are_found_by_words(desk: Any, cli: Callable[..., Any]) -> None:
    tagged = ingest(desk, inbound_email(external_id="f1@x", subject="It stopped",
                                        text="Nothing comes out.")).ticket_id  # fmt: skip
    assert cli("tickets", "tag", str(tagged), "--add", "printer").exit_code == 0
    named = ingest(desk, inbound_email(external_id="f2@x", sender_address="i.rossi@y.test",
                                       sender_name="Isabella Rossi", subject="Hello",
                                       text="A question.")).ticket_id  # fmt: skip
    attached = ingest(desk, inbound_email(
        external_id="f3@x", sender_address="p@z.test", subject="See file", text="Attached.",
        attachments=[Attachment("scan-invoice-4471.pdf", "application/pdf", b"%PDF-1", 6)],
    )).ticket_id  # fmt: skip
    assert _ids(cli, "printer") == [tagged]
    assert _ids(cli, "Rossi") == [named]
    assert _ids(cli, "isabella") == [named]
    assert _ids(cli, "4471") == [attached]
    assert _ids(cli, "-printer") == sorted([named, attached])
