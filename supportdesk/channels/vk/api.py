"""A small VK API client on httpx: method calls, the Bots Long Poll request, file transfer.

Plain HTTP rather than vkbottle or vk_api: the channel needs four methods and the long-poll
request, and it must own the long-poll ``ts`` (the runner commits it with the messages).
vkbottle is a bot framework with its own dispatcher and polling loop that keeps ``ts`` to
itself; vk_api is synchronous (requests). httpx is already here (python-telegram-bot uses it).

The community token travels only in POST bodies, never in a URL, so no request log can show
it; error sentences never contain it either.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from supportdesk.channels.base import ChannelError, SendError

API_VERSION = "5.199"
DOWNLOAD_LIMIT = 50 * 1024 * 1024

# VK error codes (https://dev.vk.com/reference/errors) this channel treats specially
AUTH_FAILED = 5
TOO_MANY_REQUESTS = 6
PERMISSION_DENIED = 7
FLOOD_CONTROL = 9
INTERNAL_ERROR = 10
INVALID_PARAMS = 100
CANT_SEND_NO_PERMISSION = 901  # the user has not allowed the community to message them
CANT_SEND_PRIVACY = 902
RETRYABLE = frozenset({TOO_MANY_REQUESTS, FLOOD_CONTROL, INTERNAL_ERROR, 1, 10, 603})


class VkApiError(ChannelError):
    """An ``{"error": {...}}`` answer."""

    def __init__(self, method: str, code: int, message: str) -> None:
        super().__init__(f"VK refused {method}: {message} (error {code}).")
        self.method = method
        self.code = code
        self.vk_message = message


class VkApi:
    """One community: ``await api.call("messages.send", peer_id=..., ...)``."""

    def __init__(self, token: str, api_url: str, *, timeout: float = 30.0) -> None:
        if not token or not token.strip():
            raise ChannelError("No VK community token is configured.")
        self._token = token.strip()
        self.api_url = api_url.rstrip("/")
        self._client = httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._poll_client = httpx.AsyncClient(timeout=None, follow_redirects=False)

    def __repr__(self) -> str:  # never show the token
        return f"VkApi(api_url={self.api_url!r}, token='***')"

    async def close(self) -> None:
        await self._client.aclose()
        await self._poll_client.aclose()

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "<token>")

    async def call(self, method: str, **params: Any) -> Any:
        """POST one method; the ``response`` value, or VkApiError / ChannelError."""
        form = {k: _form_value(v) for k, v in params.items() if v is not None}
        form["access_token"] = self._token
        form["v"] = API_VERSION
        try:
            resp = await self._client.post(f"{self.api_url}/{method}", data=form)
        except httpx.TimeoutException as exc:
            raise ChannelError(f"VK at {self.api_url} did not answer {method} in time.") from exc
        except httpx.HTTPError as exc:
            reason = self._scrub(str(exc)).rstrip(".") or type(exc).__name__
            raise ChannelError(f"Could not reach VK at {self.api_url}: {reason}.") from exc
        body = _json(resp, f"VK's answer to {method}")
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            err = body["error"]
            code = int(err.get("error_code") or 0)
            raise VkApiError(method, code, self._scrub(str(err.get("error_msg") or "")))
        if not isinstance(body, dict) or "response" not in body:
            raise ChannelError(f"VK's answer to {method} has no response.")
        return body["response"]

    async def long_poll(self, server: str, key: str, ts: str, wait: int) -> dict[str, Any]:
        """One Bots Long Poll request: ``{"ts", "updates"}`` or ``{"failed", ...}``."""
        params = {"act": "a_check", "key": key, "ts": ts, "wait": str(max(0, min(wait, 90)))}
        try:
            resp = await self._poll_client.get(
                server, params=params, timeout=httpx.Timeout(10.0, read=wait + 15.0)
            )
        except httpx.TimeoutException as exc:
            raise ChannelError("The VK long-poll server did not answer in time.") from exc
        except httpx.HTTPError as exc:
            raise ChannelError(
                f"Could not reach the VK long-poll server: {type(exc).__name__}."
            ) from exc
        body = _json(resp, "the VK long-poll answer")
        if not isinstance(body, dict):
            raise ChannelError("The VK long-poll answer is not an object.")
        return body

    async def download(self, url: str, limit: int = DOWNLOAD_LIMIT) -> bytes:
        """A file VK named in an attachment; ChannelError when it is too big or unreachable."""
        if not url.startswith(("https://", "http://")):
            raise ChannelError("the file address is not http(s)")
        try:
            async with self._client.stream("GET", url) as resp:
                if resp.status_code != 200:
                    raise ChannelError(f"VK answered {resp.status_code} for the file")
                size = int(resp.headers.get("Content-Length") or 0)
                if size > limit:
                    raise ChannelError(f"the file of {size / 1048576:.1f} MB is over the limit")
                chunks: list[bytes] = []
                got = 0
                async for chunk in resp.aiter_bytes():
                    got += len(chunk)
                    if got > limit:
                        raise ChannelError("the file is over the download limit")
                    chunks.append(chunk)
                return b"".join(chunks)
        except httpx.HTTPError as exc:
            raise ChannelError(f"the file could not be downloaded: {type(exc).__name__}") from exc

    async def upload(self, url: str, field: str, filename: str, data: bytes, ctype: str) -> Any:
        """POST a file to an upload server VK handed out (multipart); its JSON answer."""
        try:
            resp = await self._client.post(url, files={field: (filename, data, ctype)})
        except httpx.HTTPError as exc:
            raise SendError(f"VK's upload server failed: {type(exc).__name__}.") from exc
        return _json(resp, "VK's upload answer")


def _form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _json(resp: httpx.Response, what: str) -> Any:
    if resp.status_code >= 500:
        raise ChannelError(f"{what[0].upper()}{what[1:]} was HTTP {resp.status_code}.")
    try:
        return resp.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise ChannelError(f"{what[0].upper()}{what[1:]} is not JSON.") from exc


async def sleep_for(code: int) -> None:
    """Back off a little before retrying a rate-limited call."""
    await asyncio.sleep(1.0 if code in (TOO_MANY_REQUESTS, FLOOD_CONTROL) else 0.2)
