"""``POST /livekit/webhook``: LiveKit's signed events, acknowledged once stored."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from ..auth.webhooks import WebhookVerifier
from ..domain.events import HANDLED_EVENTS, stored_event
from ..errors import ApiError
from ..observability.metrics import Metrics
from ..storage.webhook_writer import WebhookWriter
from .body import MAX_WEBHOOK_BODY_BYTES, read_body
from .headers import header
from .responses import JsonResponse

log = logging.getLogger(__name__)


@dataclass
class LiveKitWebhooks:
    verifier: WebhookVerifier
    writer: WebhookWriter
    write_timeout: float
    json: JsonResponse
    metrics: Metrics

    async def receive(self, request: Request) -> Response:
        body = await read_body(request, MAX_WEBHOOK_BODY_BYTES)
        try:
            item = stored_event(self.verifier.verify(body, header(request.scope, b"authorization")))
        except ApiError:
            self.metrics.webhook("unknown", "refused")
            raise
        if item.event not in HANDLED_EVENTS:
            self.metrics.webhook(item.event, "ignored")
            return self.json({"status": "ignored", "event": item.event})
        try:
            is_new = await self.writer.store(item, self.write_timeout)
        except ApiError as exc:
            self.metrics.webhook(item.event, "unavailable")
            if exc.error == "database_unavailable":
                self.metrics.database_error("webhooks")
            raise
        self.metrics.webhook(item.event, "processed" if is_new else "duplicate")
        log.info(
            "webhook",
            extra={"event": item.event, "id": item.id, "room": item.room_name, "duplicate": not is_new},
        )
        return self.json({"status": "processed" if is_new else "duplicate", "event": item.event})
