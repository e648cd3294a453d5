"""LiveKit webhook events committed in batches (group commit), each delivery answered with its own outcome.

A delivery is acknowledged only after its batch commits (so LiveKit retries anything not stored), and every
event id is stored once (so retries and duplicates change nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from ..domain.events import StoredEvent
from ..errors import ApiError
from .writes import SqlWrites

log = logging.getLogger(__name__)


class EventBatches(Protocol):
    async def store(self, items: Sequence[StoredEvent], now: dt.datetime) -> set[str]:
        """Store a batch of events (distinct ids) and merge the new ones' facts; the ids that were new."""
        ...

    async def close(self) -> None: ...


class TransactionalBatches:
    """Each batch in a transaction of its own, through :class:`SqlWrites`."""

    def __init__(self, engine: AsyncEngine, writes: SqlWrites) -> None:
        self._engine = engine
        self._writes = writes

    async def store(self, items: Sequence[StoredEvent], now: dt.datetime) -> set[str]:
        async with self._engine.begin() as conn:
            return await self._writes.events(conn, items, now)

    async def close(self) -> None:
        return None


class WebhookWriter:
    """Group commit: concurrent deliveries share one batch; each waits for its own outcome."""

    def __init__(
        self,
        batches: EventBatches,
        *,
        batch_size: int,
        queue_size: int = 20_000,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
    ) -> None:
        self._batches = batches
        self._batch_size = batch_size
        self._queue: asyncio.Queue[tuple[StoredEvent, asyncio.Future[bool]]] = asyncio.Queue(queue_size)
        self._now = now
        self._task: asyncio.Task[None] | None = None
        self.stored = 0
        self.duplicates = 0
        self.batches = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="lkps-webhook-writer")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        await self._batches.close()
        while not self._queue.empty():
            _, future = self._queue.get_nowait()
            if not future.done():
                future.set_exception(ApiError(503, "shutting_down", "the service is stopping; retry"))

    async def store(self, item: StoredEvent, timeout: float) -> bool:
        """Store ``item``: ``True`` if new, ``False`` if its id was stored before; 503 on failure."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        try:
            self._queue.put_nowait((item, future))
        except asyncio.QueueFull:
            raise ApiError(503, "overloaded", "too many webhooks are waiting to be stored; retry") from None
        # The timer settles the future itself; the writer skips futures already settled (timed out, or
        # cancelled with a disconnected request) and stores their events all the same.
        timer = loop.call_later(timeout, _time_out, future)
        try:
            return await future
        finally:
            timer.cancel()

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                outcomes = await self._write([item for item, _ in batch])
            except asyncio.CancelledError:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(ApiError(503, "shutting_down", "the service is stopping; retry"))
                raise
            except Exception as exc:  # database down or failing: every delivery in the batch gets a 503
                log.warning("webhook batch failed", extra={"events": len(batch), "error": type(exc).__name__})
                failure = ApiError(503, "database_unavailable", "the event could not be stored; retry")
                for _, future in batch:
                    if not future.done():
                        future.set_exception(failure)
                        future.exception()  # the waiter may have timed out already
                continue
            for (_, future), is_new in zip(batch, outcomes, strict=True):
                if not future.done():
                    future.set_result(is_new)

    async def _write(self, items: list[StoredEvent]) -> list[bool]:
        first: dict[str, StoredEvent] = {}
        for item in items:
            first.setdefault(item.id, item)  # a duplicate within the same batch counts once
        inserted = await self._batches.store(list(first.values()), self._now())
        outcomes = [item.id in inserted and first[item.id] is item for item in items]
        self.batches += 1
        self.stored += len(inserted)
        self.duplicates += len(items) - len(inserted)
        return outcomes


def _time_out(future: asyncio.Future[bool]) -> None:
    if not future.done():
        future.set_exception(
            ApiError(503, "database_unavailable", "the event could not be stored in time; retry")
        )
