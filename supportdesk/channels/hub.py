"""Paths one channel serves on another channel's HTTP listener.

The website channel owns the desk's HTTPS-facing listener; a webhook channel (WhatsApp) that
names it (``web = "<web channel>"``) mounts its path here while it serves, and the website
channel hands every request under ``/whatsapp/`` to whatever is mounted, at request time --
so the two may start in either order, and a path nobody mounted is a plain 404.
Both run in the runner's one event loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_mounted: dict[tuple[str, str], Handler] = {}


def mount(listener: str, path: str, handler: Handler) -> None:
    """Serve ``path`` on the listener of channel ``listener`` with ``handler``."""
    _mounted[(listener, path)] = handler


def unmount(listener: str, path: str) -> None:
    _mounted.pop((listener, path), None)


def lookup(listener: str, path: str) -> Handler | None:
    return _mounted.get((listener, path))


async def dispatch(listener: str, request: web.Request) -> web.StreamResponse:
    """What the listener of ``listener`` answers for a mounted path."""
    handler = lookup(listener, request.path)
    if handler is None:
        raise web.HTTPNotFound(text="not found")
    return await handler(request)
