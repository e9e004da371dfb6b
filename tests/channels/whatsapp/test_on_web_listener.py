"""The WhatsApp webhook on the website channel's listener (``web = "<web channel>"``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from supportdesk.channels.whatsapp.channel import WhatsAppChannel
from tests.channels.web.conftest import FakeSink, start
from tests.channels.whatsapp.conftest import SECRET, VERIFY, RecordingSink, config_for
from tests.peers.graphapi import GraphAPIServer, sign, text_message


async def test_webhook_served_by_the_web_listener(
    graph: GraphAPIServer, wa_env: None, tmp_path: Path
) -> None:
    wa = WhatsAppChannel(config_for(graph, web="site"), home=tmp_path, desk_name="Acme")
    wa_sink = RecordingSink()
    site, site_task = await start(tmp_path, FakeSink())
    assert site.bound is not None
    base = f"http://127.0.0.1:{site.bound[1]}"
    try:
        async with httpx.AsyncClient() as http:
            # before the WhatsApp channel serves, its path is not there
            assert (await http.get(f"{base}/whatsapp/wa")).status_code == 404
            wa_task = asyncio.create_task(wa.serve(wa_sink))
            for _ in range(200):
                if (await http.get(f"{base}/whatsapp/wa")).status_code != 404:
                    break
                await asyncio.sleep(0.01)
            params = {"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "42"}
            ok = await http.get(f"{base}/whatsapp/wa", params=params)
            assert ok.status_code == 200 and ok.text == "42"
            body = text_message("79001234567", "через сайт", wamid="wamid.W1")
            forged = await http.post(
                f"{base}/whatsapp/wa",
                content=body,
                headers={"X-Hub-Signature-256": sign(body, "wrong")},
            )
            assert forged.status_code == 403 and wa_sink.messages == []
            good = await http.post(
                f"{base}/whatsapp/wa",
                content=body,
                headers={"X-Hub-Signature-256": sign(body, SECRET)},
            )
            assert good.status_code == 200
            assert [m.text for m in wa_sink.messages] == ["через сайт"]
            assert (await http.get(f"{base}/whatsapp/other")).status_code == 404
            wa_task.cancel()
            await asyncio.gather(wa_task, return_exceptions=True)
            assert (await http.get(f"{base}/whatsapp/wa")).status_code == 404
    finally:
        site_task.cancel()
        await asyncio.gather(site_task, return_exceptions=True)
        await wa.close()
