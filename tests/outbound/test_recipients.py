"""Reply-all, Cc/Bcc and forwards through the CLI, delivered by `poll --once` to a real SMTP
sink: the headers, the envelope, the HTML alternative and the attachments that arrive."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from supportdesk.desk.desk import open_desk
from tests.conftest import write_config
from tests.factories import Attachment, inbound_email, ingest

pytestmark = [pytest.mark.peers]


def _config(port: int) -> str:
    return f"""
[desk]
name = "Acme support"
timezone = "Europe/Moscow"

[[channel]]
name = "support"
type = "email"
address = "support@acme.test"
  [channel.smtp]
  host = "127.0.0.1"
  port = {port}
  security = "none"
  timeout = 5

[signatures.support]
en = "Acme support, +7 495 000-00-00"
ru = "Служба поддержки Acme"
"""


def _thread(home: Path) -> int:
    desk = open_desk(home, agent="alice")
    try:
        r = ingest(desk, inbound_email(
            subject="Invoice 4471", text="Please check the invoice.", external_id="q1@client.test",
            sender_address="ann@client.test", sender_name="Ann",
            to_addresses=["support@acme.test", "Colleague@Client.test"],
            cc_addresses=["boss@client.test", "ann@client.test", "support@acme.test"],
            attachments=[Attachment("invoice.pdf", "application/pdf", b"%PDF-1.4 fake", 13)],
        ))  # fmt: skip
        return r.ticket_id
    finally:
        desk.close()


def _poll(cli: Callable[..., Any]) -> None:
    res = cli("poll", "--once", "--json")
    assert res.exit_code == 0, res.output


def test_reply_all_with_cc_bcc_html_and_attachment(
    home: Path, cli: Callable[..., Any], smtp_sink: Any, tmp_path: Path
) -> None:
    write_config(home, _config(smtp_sink.port))
    tid = _thread(home)
    shown = json.loads(cli("tickets", "show", str(tid), "--json").stdout)
    assert shown["participants"] == ["colleague@client.test", "boss@client.test"]
    assert shown["messages"][0]["cc"] == [
        "boss@client.test",
        "ann@client.test",
        "support@acme.test",
    ]
    report = tmp_path / "report.txt"
    report.write_text("steps\n", encoding="utf-8")
    res = cli("tickets", "reply", str(tid), "--text", "Hello **Ann**,\n\n- refunded\n- <b>done</b>",
              "--reply-all", "--cc", "extra@client.test", "--bcc", "audit@acme.test",
              "--attach", str(report), "--status", "pending")  # fmt: skip
    assert res.exit_code == 0, res.output
    _poll(cli)
    [mail] = smtp_sink.wait_for(1)
    m = mail.message
    assert m["To"] == "Ann <ann@client.test>"
    assert m["Cc"] == "colleague@client.test, boss@client.test, extra@client.test"
    assert m["Bcc"] is None
    assert sorted(mail.rcpt_tos) == sorted(["ann@client.test", "colleague@client.test",
                                            "boss@client.test", "extra@client.test",
                                            "audit@acme.test"])  # fmt: skip
    assert m["In-Reply-To"] == "<q1@client.test>"
    assert m.get_content_type() == "multipart/mixed"
    alt = m.get_payload()[0]
    assert alt.get_content_type() == "multipart/alternative"
    plain, html = alt.get_payload()
    assert "Hello **Ann**" in plain.get_content()
    assert plain.get_content().rstrip().endswith("Acme support, +7 495 000-00-00")
    body = html.get_content()
    assert "<strong>Ann</strong>" in body and "<li>refunded</li>" in body
    assert "<b>" not in body and "&lt;b&gt;done" in body  # pasted HTML is text, never markup
    assert [p.get_filename() for p in m.iter_attachments()] == ["report.txt"]
    doc = json.loads(cli("tickets", "show", str(tid), "--json").stdout)
    assert doc["status"] == "pending"
    out = doc["messages"][-1]
    assert out["cc"] == ["colleague@client.test", "boss@client.test", "extra@client.test"]
    assert out["bcc"] == ["audit@acme.test"]


def test_forward_whole_ticket_with_attachments(
    home: Path, cli: Callable[..., Any], smtp_sink: Any
) -> None:
    write_config(home, _config(smtp_sink.port))
    tid = _thread(home)
    res = cli("tickets", "forward", str(tid), "--to", "accountant@acme.test",
              "--text", "Please check this invoice.")  # fmt: skip
    assert res.exit_code == 0, res.output
    _poll(cli)
    [mail] = smtp_sink.wait_for(1)
    m = mail.message
    assert mail.rcpt_tos == ["accountant@acme.test"]
    assert m["To"] == "accountant@acme.test"
    assert m["Subject"] == f"Fwd: Invoice 4471 [#{tid}]"
    text = m.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert text.startswith("Please check this invoice.")
    assert "---------- Forwarded message ----------\nFrom: Ann <ann@client.test>" in text
    assert "Please check the invoice." in text
    html = m.get_body(("html",)).get_content()
    assert "<pre><code>---------- Forwarded message" in html
    [att] = list(m.iter_attachments())
    assert att.get_filename() == "invoice.pdf" and att.get_content() == b"%PDF-1.4 fake"
    doc = json.loads(cli("tickets", "show", str(tid), "--json").stdout)
    assert doc["status"] == "new"  # a forward is not an answer to the customer
    assert doc["first_response_at"] is None
    assert doc["messages"][-1]["direction"] == "out"
    assert doc["messages"][-1]["to"] == ["accountant@acme.test"]


def test_bad_addresses_are_one_sentence(
    home: Path, cli: Callable[..., Any], smtp_sink: Any
) -> None:
    write_config(home, _config(smtp_sink.port))
    tid = _thread(home)
    res = cli("tickets", "reply", str(tid), "--text", "x", "--cc", "not an address")
    assert res.exit_code != 0
    assert "the Cc address 'not an address' is not an e-mail address" in res.stderr
    res = cli("tickets", "forward", str(tid), "--to", "nobody", "--message", "999")
    assert res.exit_code != 0 and "To address" in res.stderr
    res = cli("tickets", "forward", str(tid), "--to", "a@b.test", "--message", "999")
    assert res.exit_code != 0 and "no message 999" in res.stderr


def test_agent_and_channel_signatures_in_the_customers_language(
    home: Path, cli: Callable[..., Any], smtp_sink: Any
) -> None:
    write_config(home, _config(smtp_sink.port))
    tid = _thread(home)
    assert cli("agents", "add", "alice", "--role", "lead").exit_code == 0
    res = cli("agents", "edit", "alice", "--signature", "Алиса\\nслужба поддержки", "--lang", "ru")
    assert res.exit_code == 0, res.output
    assert cli("agents", "edit", "alice", "--signature", "Alice", "--lang", "en").exit_code == 0
    assert cli("customers", "edit", "ann@client.test", "--language", "ru").exit_code == 0
    assert cli("tickets", "reply", str(tid), "--text", "Готово.").exit_code == 0
    doc = json.loads(cli("tickets", "show", str(tid), "--json").stdout)
    assert doc["messages"][-1]["text"] == (
        "Готово.\n\n-- \nАлиса\nслужба поддержки\nСлужба поддержки Acme"
    )
