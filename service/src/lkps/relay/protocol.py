"""The websocket protocol ``lkps serve`` runs the relay on: uvicorn's websockets-sansio protocol (what its
``ws="auto"`` picks), with two changes so that a refused worker leaves only the service's own rate-limited
``request refused`` line (:mod:`lkps.observability.refusals`):

- A denial response (the relay's 401 before the upgrade) completes the handshake. uvicorn 0.54 does not mark
  it so and logs ``ASGI callable returned without completing handshake.`` at ERROR for every refused worker
  (Kludex/uvicorn#3138, open).
- Its per-connection lines (a worker's upgrade accepted or refused, websockets' ``connection rejected``) go to
  ``uvicorn.error.websocket``, at WARNING: a flood of forged tokens does not become a flood of lines. Errors
  (an exception in the app) are logged as before.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

if TYPE_CHECKING:
    from uvicorn._types import ASGISendEvent

LOGGER = logging.getLogger("uvicorn.error.websocket")
LOGGER.setLevel(logging.WARNING)


class RelayWebSocketProtocol(WebSocketsSansIOProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.logger = LOGGER
        self.conn.logger = LOGGER

    async def send(self, message: ASGISendEvent) -> None:
        await super().send(message)
        denied = message["type"] == "websocket.http.response.body" and not message.get("more_body", False)
        if denied and self.initial_response is not None:
            self.handshake_complete = True
