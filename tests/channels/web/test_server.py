"""The website channel's HTTP side against a sink the test controls: protocol, safety, limits."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from supportdesk.channels.base import OutboundMessage, SendError
from tests.channels.web.conftest import FakeSink, Served, start

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n"


async def hello(ws: Any) -> dict[str, Any]:
    await ws.send_json({"t": "hello", "lang": "en", "page": "http://shop.test/pricing"})
    return await next_frame(ws, "welcome")


async def next_frame(ws: Any, kind: str, timeout: float = 10) -> dict[str, Any]:
    while True:
        f = await asyncio.wait_for(ws.receive_json(), timeout)
        if f["t"] == kind:
            return f


async def test_healthz_and_widget_script(served: Served) -> None:
    async with served.http.get(f"{served.url}/healthz") as r:
        assert r.status == 200
        assert (await r.json())["status"] == "ok"
    async with served.http.get(f"{served.url}/widget.js") as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("application/javascript")
        body = await r.text()
    assert '"channel":"site"' in body and "/*CONFIG*/{}" not in body
    assert "innerHTML" not in body and "insertAdjacentHTML" not in body


async def test_widget_config_cannot_break_out_of_the_script(tmp_path: Path) -> None:
    ch, task = await start(tmp_path, FakeSink(), display_name="</script><script>alert(1)</script>")
    try:
        assert ch.bound is not None
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async with http.get(f"http://127.0.0.1:{ch.bound[1]}/widget.js") as r:
                body = await r.text()
        assert "</script>" not in body and "\\u003c/script\\u003e" in body
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.mark.parametrize("origin", ["http://evil.test", "null", "http://shop.test.evil.test"])
async def test_websocket_refuses_other_origins(served: Served, origin: str) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as exc:
        await served.ws(origin=origin)
    assert exc.value.status == 403


async def test_message_is_acknowledged_only_after_the_sink_committed(served: Served) -> None:
    served.sink.gate = asyncio.Event()
    ws = await served.ws()
    welcome = await hello(ws)
    assert welcome["online"] is True and welcome["promise"] == "4 h"
    assert welcome["messages"] == [] and welcome["token"].startswith(welcome["visitor"] + ".")
    await ws.send_json({"t": "msg", "cid": "c1abcdef", "text": "hello <b>there</b>"})
    with pytest.raises(TimeoutError):
        await next_frame(ws, "ack", timeout=0.3)  # the commit has not happened
    served.sink.gate.set()
    ack = await next_frame(ws, "ack")
    assert ack["cid"] == "c1abcdef" and ack["id"] == f"web:{welcome['visitor']}:c1abcdef"
    [m] = served.sink.stored
    assert m.kind == "web" and m.text == "hello <b>there</b>" and m.raw
    assert m.extra["page"] == "http://shop.test/pricing"
    await ws.close()


async def test_resends_and_reconnects_never_double_a_message(served: Served) -> None:
    ws = await served.ws()
    welcome = await hello(ws)
    for _ in range(3):  # the browser did not see the ack and sent again
        await ws.send_json({"t": "msg", "cid": "same-id-1", "text": "only once"})
        await next_frame(ws, "ack")
    await ws.close()
    ws2 = await served.ws(token=welcome["token"])  # a new socket, same browser
    again = await hello(ws2)
    assert again["visitor"] == welcome["visitor"]
    assert [m["text"] for m in again["messages"]] == ["only once"]
    assert len(served.sink.stored) == 1
    await ws2.close()


async def test_a_forged_token_gets_a_new_visitor(served: Served) -> None:
    ws = await served.ws()
    real = await hello(ws)
    await ws.send_json({"t": "msg", "cid": "secret-1", "text": "my order 123"})
    await next_frame(ws, "ack")
    await ws.close()
    forged = real["visitor"] + ".AAAAAAAAAAAAAAAAAAAAAAAA"
    async with aiohttp.ClientSession() as other:  # no cookie jar shared with the first
        ws2 = await other.ws_connect(
            f"{served.url}/ws?token={forged}", headers={"Origin": served.origin}
        )
        w2 = await hello(ws2)
        assert w2["visitor"] != real["visitor"] and w2["messages"] == []
        await ws2.close()


async def test_visitor_text_is_data_control_characters_dropped(served: Served) -> None:
    ws = await served.ws()
    await hello(ws)
    hostile = "<script>alert(1)</script>\x1b[31mred\x1b]0;title\x07 [bold]x[/bold]\r\nline2"
    await ws.send_json({"t": "msg", "cid": "hostile-1", "text": hostile})
    await next_frame(ws, "ack")
    [m] = served.sink.stored
    assert "\x1b" not in m.text and "\x07" not in m.text and "\r" not in m.text
    assert m.text.startswith("<script>alert(1)</script>[31mred")
    await ws.send_json({"t": "msg", "cid": "x", "text": "bad id"})
    assert "client id" in (await next_frame(ws, "error"))["text"]
    await ws.send_str("not json")
    assert (await next_frame(ws, "error"))["text"] == "a frame is not JSON"
    await ws.close()


async def test_reply_is_pushed_and_confirmed(served: Served) -> None:
    ws = await served.ws()
    w = await hello(ws)

    async def browser() -> dict[str, Any]:
        f = await next_frame(ws, "msg")
        await ws.send_json({"t": "seen", "id": f["id"]})
        return f

    seen = asyncio.create_task(browser())
    t0 = time.monotonic()
    res = await served.channel.send(
        OutboundMessage(
            kind="web", to_address=w["visitor"], text="Hi! <i>x</i>", message_id="web-out:1"
        )
    )  # type: ignore[arg-type]
    assert time.monotonic() - t0 < 5  # it does not wait for the browser's "seen"
    f = await seen
    assert f["text"] == "Hi! <i>x</i>" and f["id"] == "web-out:1"
    assert res.external_ids == ["web-out:1"] and "shown" in res.detail
    await ws.close()


async def test_reply_waits_for_a_visitor_who_is_away_then_goes_by_mail(served: Served) -> None:
    ws = await served.ws()
    w = await hello(ws)
    await ws.close()
    await asyncio.sleep(0)  # let the server see the close
    for _ in range(100):
        if not served.channel.visitors[w["visitor"]].sockets:
            break
        await asyncio.sleep(0.01)
    out = OutboundMessage(
        kind="web", to_address=w["visitor"], text="answer", message_id="web-out:2"
    )  # type: ignore[arg-type]
    with pytest.raises(SendError) as exc:
        await served.channel.send(out)
    assert not exc.value.permanent and exc.value.retry_after and exc.value.retry_after > 1
    served.channel.visitors[w["visitor"]].last_seen -= 3600  # gone an hour ago
    served.sink.email_for[w["visitor"]] = "ann@example.test"
    res = await served.channel.send(out)
    assert "by e-mail to ann@example.test" in res.detail
    assert served.sink.forwarded[0][0] == w["visitor"]


async def test_kb_suggestions_as_the_visitor_types(served: Served) -> None:
    ws = await served.ws()
    await hello(ws)
    await ws.send_json({"t": "suggest", "q": "I forgot my password"})
    kb = await next_frame(ws, "kb")
    assert kb["items"] == [
        {
            "title": "How to reset your password",
            "snippet": "Open settings",
            "url": "https://help.acme.test/kb/reset-password.html",
        }
    ]
    await ws.close()


async def test_messages_per_visitor_are_rate_limited(tmp_path: Path) -> None:
    sink = FakeSink()
    ch, task = await start(tmp_path, sink, visitor_messages_per_minute=3)
    try:
        assert ch.bound is not None
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            ws = await http.ws_connect(
                f"http://127.0.0.1:{ch.bound[1]}/ws", headers={"Origin": "http://shop.test"}
            )
            await hello(ws)
            for i in range(3):
                await ws.send_json({"t": "msg", "cid": f"rate-{i:04d}", "text": "x"})
                await next_frame(ws, "ack")
            await ws.send_json({"t": "msg", "cid": "rate-9999", "text": "x"})
            err = await next_frame(ws, "error")
            assert err["cid"] == "rate-9999" and err["retry"] is True
            assert len(sink.stored) == 3
            await ws.close()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


# ---- the contact form ---------------------------------------------------------------------


async def form_page(served: Served) -> dict[str, str]:
    async with served.http.get(f"{served.url}/contact") as r:
        assert r.status == 200
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
        page = await r.text()
    fields = dict(re.findall(r'name="(csrf|submission)" value="([^"]+)"', page))
    assert set(fields) == {"csrf", "submission"} and 'name="website"' in page
    return fields


def form(fields: dict[str, str], **values: Any) -> aiohttp.FormData:
    data = aiohttp.FormData()
    base = {
        "name": "Ann",
        "email": "ann@example.test",
        "subject": "Invoice",
        "message": "Where is it?",
        "website": "",
    }
    base.update(fields)
    for k, v in {**base, **values}.items():
        if isinstance(v, tuple):
            data.add_field("files", v[1], filename=v[0], content_type="application/octet-stream")
        elif v is not None:
            data.add_field(k, v)
    return data


async def test_contact_form_becomes_an_email_message(served: Served) -> None:
    fields = await form_page(served)
    data = form(fields, file1=("shot.png", PNG))
    data.add_field("files", PDF, filename="../../etc/passwd.pdf", content_type="text/html")
    async with served.http.post(
        f"{served.url}/contact", data=data, headers={"Origin": served.url}
    ) as r:
        body = await r.text()
        assert r.status == 200, body
    assert "ticket #1" in body
    [m] = served.sink.stored
    assert m.kind == "email" and m.sender_address == "ann@example.test" and m.subject == "Invoice"
    assert m.external_id == f"webform:{fields['submission']}" and m.raw
    [png, pdf] = m.attachments
    assert (png.filename, png.content_type, png.data) == ("shot.png", "image/png", PNG)
    assert pdf.content_type == "application/pdf" and pdf.data == PDF  # the declared type is ignored
    assert "/" not in pdf.filename and pdf.filename.endswith("passwd.pdf")


async def test_contact_form_refusals(served: Served) -> None:
    fields = await form_page(served)
    async with served.http.post(f"{served.url}/contact", data=form(fields, csrf="1.forged")) as r:
        assert r.status == 403 and "expired" in await r.text()
    async with served.http.post(
        f"{served.url}/contact", data=form(fields, email="not-an-address")
    ) as r:
        assert r.status == 400
    async with served.http.post(
        f"{served.url}/contact", data=form(fields, file1=("x.png", b"<html><script>"))
    ) as r:
        assert r.status == 415 and "not an image or a PDF" in await r.text()
    async with served.http.post(
        f"{served.url}/contact", data=form(fields), headers={"Origin": "http://evil.test"}
    ) as r:
        assert r.status == 403
    async with served.http.post(
        f"{served.url}/contact", data=form(fields, website="http://spam")
    ) as r:
        assert r.status == 200  # the bot is told nothing
    assert served.sink.stored == []


async def test_contact_form_echoes_nothing_as_html(served: Served) -> None:
    fields = await form_page(served)
    async with served.http.post(
        f"{served.url}/contact",
        data=form(fields, name='"><script>alert(1)</script>', email="bad<script>@x"),
    ) as r:
        page = await r.text()
    assert "<script>" not in page and "&lt;script&gt;" in page


async def test_contact_form_upload_size_limit(tmp_path: Path) -> None:
    sink = FakeSink()
    ch, task = await start(tmp_path, sink, max_attachment_bytes=1024)
    try:
        assert ch.bound is not None
        url = f"http://127.0.0.1:{ch.bound[1]}"
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            s = Served(ch, sink, url, http)
            fields = await form_page(s)
            async with http.post(
                f"{url}/contact", data=form(fields, file1=("big.png", PNG + b"\0" * 2000))
            ) as r:
                assert r.status == 413 and "larger than" in await r.text()
        assert sink.stored == []
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_web_channel_in_config_toml(home: Path) -> None:
    from supportdesk.channels.registry import make_channel
    from supportdesk.channels.web.channel import WebChannel
    from supportdesk.core.config import ConfigError, load_config
    from tests.conftest import write_config

    write_config(
        home,
        '[[channel]]\nname = "site"\ntype = "web"\nlisten = "127.0.0.1:8085"\n'
        'public_url = "https://help.acme.test"\nallowed_origins = ["https://acme.test"]\n'
        '[channel.texts.ru]\ntitle = "Поддержка Acme"\n',
    )
    cfg = load_config(home)
    ch = make_channel(cfg.channel[0], home=home, desk_name="Acme")
    assert isinstance(ch, WebChannel) and ch.origins == {
        "https://acme.test",
        "https://help.acme.test",
    }
    assert ch.config.text_table("ru", "Acme")["title"] == "Поддержка Acme"
    for bad, words in [
        ('listen = "8085"', "listen is host:port"),
        ('colour = "#fff"', "colour"),
        ('color = "red"', "#rrggbb"),
        ("[channel.texts.de]\ntitle = 'x'", "en and ru"),
    ]:
        write_config(home, f'[[channel]]\nname = "site"\ntype = "web"\n{bad}\n')
        with pytest.raises(ConfigError) as exc:
            load_config(home)
        assert words in str(exc.value)


async def test_a_kept_chat_message_parses_again_from_the_ledger(served: Served) -> None:
    from supportdesk.channels.base import ParseError

    ws = await served.ws()
    await hello(ws)
    await ws.send_json({"t": "msg", "cid": "ledger-01", "text": "keep me"})
    await next_frame(ws, "ack")
    await ws.close()
    [m] = served.sink.stored
    assert m.raw is not None
    again = served.channel.parse_raw(m.raw)
    assert (again.external_id, again.text, again.sender_address) == (
        m.external_id,
        m.text,
        m.sender_address,
    )
    assert again.extra["page"] == m.extra["page"]
    for bad in (b"--boundary\r\nContent-Disposition: form-data", b'{"visitor": "x"}', b"\xff"):
        with pytest.raises(ParseError):
            served.channel.parse_raw(bad)
