"""Signed LiveKit webhooks, delivered in order from a background task with bounded, backed-off retries."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading

import aiohttp
from google.protobuf import json_format
from livekit.protocol.webhook import WebhookEvent

from .records import WebhookDelivery, utcnow
from .tokens import TokenAuthority

logger = logging.getLogger(__name__)

WEBHOOK_CONTENT_TYPE = "application/webhook+json"


class WebhookSender:
    """Queues events as :class:`WebhookDelivery` records and POSTs them one at a time, oldest first.

    A failing event (non-2xx or no connection) is retried up to ``max_attempts`` times before the next one
    goes out, which keeps deliveries in order the way a receiver replaying state expects.
    """

    def __init__(
        self,
        url: str,
        authority: TokenAuthority,
        lock: threading.RLock,
        *,
        max_attempts: int = 5,
        retry_backoff: float = 0.2,
        request_timeout: float = 5.0,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"webhook max_attempts={max_attempts} must be at least 1")
        self.url = url
        self._authority = authority
        self._lock = lock
        self._max_attempts = max_attempts
        self._retry_backoff = retry_backoff
        self._request_timeout = request_timeout
        self.deliveries: list[WebhookDelivery] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    def enqueue(self, event: WebhookEvent) -> None:
        """Record the event; call on the server loop (the sender task is woken there)."""
        body = json_format.MessageToJson(event, indent=None)
        delivery = WebhookDelivery(
            id=event.id,
            event=event.event,
            room_name=event.room.name,
            participant_identity=event.participant.identity,
            body=body,
        )
        with self._lock:
            self.deliveries.append(delivery)
        if self._wake is not None:
            self._wake.set()

    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._request_timeout))
        self._task = asyncio.create_task(self._run(), name="livekit-standin-webhooks")
        self._wake.set()  # resume anything left pending by a restart

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        self._wake = None

    def _next_pending(self) -> WebhookDelivery | None:
        with self._lock:
            return next((d for d in self.deliveries if d.status == "pending"), None)

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            delivery = self._next_pending()
            if delivery is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            await self._deliver(delivery)

    async def _deliver(self, delivery: WebhookDelivery) -> None:
        assert self._session is not None
        # the token is minted per attempt so a retry after a long outage still carries a fresh exp
        while True:
            headers = {
                "Content-Type": WEBHOOK_CONTENT_TYPE,
                "Authorization": self._authority.sign_webhook(delivery.body),
            }
            status: int | None = None
            error = ""
            try:
                async with self._session.post(
                    self.url, data=delivery.body.encode(), headers=headers
                ) as response:
                    status = response.status
                    await response.read()
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                error = f"{type(exc).__name__}: {exc}"
            with self._lock:
                delivery.attempts += 1
                if status is not None:
                    delivery.response_statuses.append(status)
                    if 200 <= status < 300:
                        delivery.status = "delivered"
                        delivery.delivered_at = utcnow()
                        delivery.last_error = ""
                        return
                    error = f"HTTP {status}"
                delivery.last_error = error
                if delivery.attempts >= self._max_attempts:
                    delivery.status = "failed"
                    logger.warning(
                        "webhook %s (%s) failed after %d attempts: %s",
                        delivery.id,
                        delivery.event,
                        delivery.attempts,
                        error,
                    )
                    return
                delay = min(self._retry_backoff * 2 ** (delivery.attempts - 1), 5.0)
            await asyncio.sleep(delay)
