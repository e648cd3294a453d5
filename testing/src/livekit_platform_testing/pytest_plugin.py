"""pytest fixtures for the stand-ins (a ``pytest11`` entry point: pytest loads it automatically).

=====================  ========  ===================================================================
fixture                scope     what
=====================  ========  ===================================================================
``entra_standin``      module    ``EntraStandIn(**entra_standin_options)``
``tenant``             module    ``Tenant(entra_standin, **tenant_options)``: the platform's app set up
``livekit_standin``    module    ``LiveKitStandIn(**livekit_standin_options)``
``platform_standin``   function  ``PlatformStandIn`` for ``tenant``'s platform app, on both stand-ins
``otlp_collector``     function  ``OtlpStandIn()``
=====================  ========  ===================================================================

Override ``entra_standin_options``, ``livekit_standin_options`` or ``tenant_options`` (session- or
module-scoped fixtures returning keyword arguments) in a ``conftest.py`` to configure them, e.g.
``{"departure_timeout": 2.0}`` for the LiveKit stand-in. The stand-ins are module-scoped so that two folders
of one run can configure them differently. Loading the plugin imports nothing but pytest: each fixture
imports its stand-in when it first runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .entra import EntraStandIn
    from .livekit import LiveKitStandIn
    from .otlp import OtlpStandIn
    from .platform import PlatformStandIn
    from .tenant import Tenant


@pytest.fixture(scope="session")
def entra_standin_options() -> dict[str, Any]:
    """Keyword arguments of ``EntraStandIn`` for ``entra_standin`` (``tenant_id``, ``token_lifetime``)."""
    return {}


@pytest.fixture(scope="session")
def livekit_standin_options() -> dict[str, Any]:
    """Keyword arguments of ``LiveKitStandIn`` for ``livekit_standin`` (e.g. ``api_key``/``api_secret``)."""
    return {}


@pytest.fixture(scope="session")
def tenant_options() -> dict[str, Any]:
    """Keyword arguments of ``Tenant`` for ``tenant`` (e.g. ``platform_app_id``)."""
    return {}


@pytest.fixture(scope="module")
def entra_standin(entra_standin_options: dict[str, Any]) -> Iterator[EntraStandIn]:
    """An Entra tenant (with Graph, IMDS and a Kubernetes issuer) on 127.0.0.1."""
    from .entra import EntraStandIn

    with EntraStandIn(**entra_standin_options) as standin:
        yield standin


@pytest.fixture(scope="module")
def tenant(entra_standin: EntraStandIn, tenant_options: dict[str, Any]) -> Tenant:
    """The platform's app registration in ``entra_standin``; add agents and clients with its methods."""
    from .tenant import Tenant

    return Tenant(entra_standin, **tenant_options)


@pytest.fixture(scope="module")
def livekit_standin(livekit_standin_options: dict[str, Any]) -> Iterator[LiveKitStandIn]:
    """A LiveKit server (agent websocket, dispatch, rooms, webhooks; no media) on 127.0.0.1."""
    from .livekit import LiveKitStandIn

    with LiveKitStandIn(**livekit_standin_options) as standin:
        yield standin


@pytest.fixture
def platform_standin(
    entra_standin: EntraStandIn, livekit_standin: LiveKitStandIn, tenant: Tenant
) -> Iterator[PlatformStandIn]:
    """The platform's register endpoint for ``tenant``'s platform app (set ``mode``, ``token_ttl``)."""
    from .platform import PlatformStandIn

    with PlatformStandIn(entra_standin, livekit_standin, platform_app_id=tenant.platform.app_id) as standin:
        yield standin


@pytest.fixture
def otlp_collector() -> Iterator[OtlpStandIn]:
    """An OTLP/HTTP trace collector on 127.0.0.1 (``OTEL_EXPORTER_OTLP_ENDPOINT`` = its ``url``)."""
    from .otlp import OtlpStandIn

    with OtlpStandIn() as collector:
        yield collector
