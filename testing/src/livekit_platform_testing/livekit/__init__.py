"""The LiveKit server: the agent websocket, room-config dispatch, rooms, the admin API and signed webhooks.

``LiveKitStandIn`` (``standin``) runs ``LiveKitBackend`` (``models``, over ``workers`` and ``dispatch``) on
its server loop; the wire is ``agent_socket`` (the worker protocol) and ``responses`` (health, admin API),
routed by ``urls``; ``rooms``, ``tokens`` and ``webhooks`` hold the rest, ``records`` what it saw,
``exceptions`` what it refuses. ``python -m livekit_platform_testing.livekit`` runs it.
"""

from .cli import main
from .exceptions import RoomRequestError
from .records import (
    ConnectionAttempt,
    Job,
    JoinResult,
    Participant,
    Room,
    TokenClaims,
    WebhookDelivery,
    Worker,
)
from .standin import LiveKitStandIn

__all__ = [
    "ConnectionAttempt",
    "Job",
    "JoinResult",
    "LiveKitStandIn",
    "Participant",
    "Room",
    "RoomRequestError",
    "TokenClaims",
    "WebhookDelivery",
    "Worker",
    "main",
]
