"""A stand-in's HTTP server running on its own event loop in a background thread.

Its own thread lets synchronous clients (azure-identity's requests transport) and asynchronous ones talk to a
stand-in started from the same test, and keeps the stand-in alive across the test's event loops.
"""

from __future__ import annotations

import abc
import asyncio
import json
import signal
import ssl
import sys
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from types import TracebackType
from typing import Any, TypeVar

from aiohttp import web

_T = TypeVar("_T")
_Self = TypeVar("_Self", bound="StandInServer")

LOOPBACK = "127.0.0.1"


class StandInServer(abc.ABC):
    """Base class: subclasses build an aiohttp application; this runs it on 127.0.0.1 in a thread.

    Use as ``with Stand() as s:`` or ``async with Stand() as s:``; ``s.url`` is its base URL.
    """

    scheme = "http"

    def __init__(self, *, port: int = 0, ssl_context: ssl.SSLContext | None = None) -> None:
        self._requested_port = port
        self._ssl_context = ssl_context
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._lock = threading.RLock()

    # -- to implement ---------------------------------------------------------------------------------------

    @abc.abstractmethod
    def build_app(self) -> web.Application:
        """The stand-in's routes."""

    async def on_started(self) -> None:  # noqa: B027 (an optional hook, empty by default)
        """Hook run on the server loop after the socket is bound."""

    async def on_stopping(self) -> None:  # noqa: B027 (an optional hook, empty by default)
        """Hook run on the server loop before the socket is closed (close websockets here)."""

    def describe(self) -> dict[str, Any]:
        """What ``python -m`` prints once the server listens: URLs a caller needs."""
        return {"url": self.url}

    # -- lifecycle ------------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} is not running: call start() first")
        return self._port

    @property
    def host(self) -> str:
        return LOOPBACK

    @property
    def url(self) -> str:
        return f"{self.scheme}://{LOOPBACK}:{self.port}"

    @property
    def running(self) -> bool:
        return self._runner is not None

    def start(self: _Self) -> _Self:
        if self._thread is not None:
            raise RuntimeError(f"{type(self).__name__} is already running")
        loop = asyncio.new_event_loop()
        ready: Future[None] = Future()

        def _run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._serve())
            except BaseException as exc:  # hand any bind error to the starting thread
                if not ready.done():
                    ready.set_exception(exc)
                return
            ready.set_result(None)
            loop.run_forever()

        self._loop = loop
        self._thread = threading.Thread(target=_run, name=type(self).__name__, daemon=True)
        self._thread.start()
        try:
            ready.result(timeout=30)
        except BaseException:
            self._thread.join(timeout=5)
            self._thread = None
            loop.close()
            self._loop = None
            raise
        return self

    async def _serve(self) -> None:
        # A stand-in stops like a crashed server: open handlers get a moment, not aiohttp's 60 s grace.
        self._runner = web.AppRunner(
            self.build_app(), access_log=None, handle_signals=False, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(
            self._runner, LOOPBACK, self._requested_port or self._port or 0, ssl_context=self._ssl_context
        )
        await site.start()
        server = site._server  # aiohttp exposes the bound port only through the asyncio server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self._port = int(sockets[0].getsockname()[1])
        await self.on_started()

    async def _shutdown(self) -> None:
        await self.on_stopping()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        loop = self._loop
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout=30)
        loop.close()
        self._thread = None
        self._loop = None

    def restart(self) -> None:
        """Stop and start again on the same port (clients see every connection drop, then come back)."""
        self.stop()
        self._requested_port = self._port or 0
        self.start()

    def call(self, fn: Callable[[], Awaitable[_T]], timeout: float = 30) -> _T:
        """Run a coroutine function on the server's loop from any thread and return its result."""
        if self._loop is None:
            raise RuntimeError(f"{type(self).__name__} is not running")

        async def _invoke() -> _T:
            return await fn()

        return asyncio.run_coroutine_threadsafe(_invoke(), self._loop).result(timeout=timeout)

    def __enter__(self: _Self) -> _Self:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self: _Self) -> _Self:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        text=json.dumps(data), status=status, content_type="application/json", headers=headers
    )


def serve_forever(server: StandInServer) -> None:
    """Run a stand-in as a process: print its description as one JSON line, stop on SIGINT/SIGTERM."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with server:
        print(json.dumps(server.describe()), flush=True)
        stop.wait()
    sys.exit(0)
