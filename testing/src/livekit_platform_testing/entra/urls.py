"""The Entra stand-in's routes: which handler answers which path, on the HTTPS and the IMDS port."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .admin import admin_routes
from .discovery import openid_configuration_v1, openid_configuration_v2
from .graph import GraphApi
from .imds import IMDS_TOKEN_PATH, ImdsEndpoint
from .responses import TenantResponses

if TYPE_CHECKING:
    from .standin import EntraStandIn


def build_app(standin: EntraStandIn) -> web.Application:
    """The HTTPS application: admin API, Kubernetes issuer, Microsoft Graph, then the tenant's endpoints."""
    backend = standin.backend
    tenant = TenantResponses(backend, kubernetes_issuer_url=lambda: standin.kubernetes_issuer_url)
    graph = GraphApi(
        directory=backend.directory,
        key=backend.key,
        issuers=backend.issuers,
        graph_url=lambda: standin.graph_url,
        records=backend.records,
    )
    app = web.Application()
    app.add_routes(admin_routes(standin))
    app.router.add_get("/kubernetes/.well-known/openid-configuration", tenant.kubernetes_discovery)
    app.router.add_get("/kubernetes/openid/v1/jwks", tenant.kubernetes_jwks)
    app.router.add_route("*", "/graph/v1.0/{path:.*}", graph.handle)
    tenant_documents: dict[str, Callable[[], dict[str, Any]]] = {
        "/{tenant}/v2.0/.well-known/openid-configuration": lambda: openid_configuration_v2(
            authority=standin.authority, issuer=standin.issuer
        ),
        "/{tenant}/.well-known/openid-configuration": lambda: openid_configuration_v1(
            authority=standin.authority, issuer=standin.v1_issuer
        ),
        "/{tenant}/discovery/v2.0/keys": backend.jwks,
        "/{tenant}/discovery/keys": backend.jwks_v1,
    }
    for path, document in tenant_documents.items():
        app.router.add_get(path, tenant.tenant_json(document))
    app.router.add_post("/{tenant}/oauth2/v2.0/token", tenant.token)
    app.router.add_post("/{tenant}/oauth2/token", tenant.token)
    return app


def build_imds_app(standin: EntraStandIn) -> web.Application:
    """The plain-HTTP managed-identity endpoint (IMDS is plain HTTP, on a port of its own)."""
    backend = standin.backend
    imds = ImdsEndpoint(
        directory=backend.directory,
        records=backend.records,
        issue=backend.issue_token,
        tenant_id=backend.tenant_id,
    )
    app = web.Application()
    app.router.add_get(IMDS_TOKEN_PATH, imds.handle)
    return app
