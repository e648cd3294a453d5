"""The uvicorn configuration ``lkps serve`` runs with; test servers and the benchmark floor use it too."""

from __future__ import annotations

import uvicorn
from starlette.types import ASGIApp

from .http_protocol import CorkedHttpToolsProtocol


def server_config(app: ASGIApp, host: str, port: int, *, corked: bool = True) -> uvicorn.Config:
    """Logging stays ``lkps.logs``'s (no uvicorn log config, no access log: the service logs each request
    itself); no ``server`` header; lifespan on (it starts and stops the audit writer). ``corked=False`` is
    uvicorn's own HTTP protocol instead of :class:`lkps.http_protocol.CorkedHttpToolsProtocol`."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        server_header=False,
        lifespan="on",
        http=CorkedHttpToolsProtocol if corked else "auto",
    )
