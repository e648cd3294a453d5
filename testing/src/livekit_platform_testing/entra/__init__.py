"""Entra ID + Microsoft Graph + the managed-identity endpoint + a Kubernetes service-account issuer.

``EntraStandIn`` serves one tenant (``standin``); its state and token issuing live in ``models``, the wire in
``responses`` (token endpoint, discovery), ``graph``, ``imds`` and ``admin``, the routes in ``urls``, the
errors in ``exceptions`` and what it saw in ``records``. ``python -m livekit_platform_testing.entra`` runs it.
"""

from .cli import main
from .directory import (
    GRAPH_APP_ID,
    GRAPH_RESOURCE,
    GRAPH_SCOPE,
    TOKEN_EXCHANGE_AUDIENCE,
    AppRegistration,
    FederatedCredential,
    UnknownAppError,
)
from .records import GraphRequest, TokenRequest
from .standin import EntraStandIn

__all__ = [
    "GRAPH_APP_ID",
    "GRAPH_RESOURCE",
    "GRAPH_SCOPE",
    "TOKEN_EXCHANGE_AUDIENCE",
    "AppRegistration",
    "EntraStandIn",
    "FederatedCredential",
    "GraphRequest",
    "TokenRequest",
    "UnknownAppError",
    "main",
]
