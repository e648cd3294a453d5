"""The LiveKit Platform Service's register endpoint, for an agent repo's own fast tests.

``PlatformStandIn`` (``standin``) keeps its mode and what it saw in ``PlatformBackend`` (``models``); the wire
is ``responses``, routed by ``urls``; ``roles`` holds the platform's names in Entra (its app roles and the
scope agents expose), ``records`` the register calls seen.
"""

from .records import Mode, Registration
from .roles import ADMIN_ROLE, CLIENT_SCOPE, GRAPH_READ_ROLE, REGISTER_ROLE, SESSION_ROLE
from .standin import PlatformStandIn

__all__ = [
    "ADMIN_ROLE",
    "CLIENT_SCOPE",
    "GRAPH_READ_ROLE",
    "REGISTER_ROLE",
    "SESSION_ROLE",
    "Mode",
    "PlatformStandIn",
    "Registration",
]
