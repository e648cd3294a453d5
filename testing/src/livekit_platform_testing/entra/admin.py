"""The Entra stand-in's admin API under ``/_standin``: JSON over HTTP for a stand-in run as a process.

Loopback only and unauthenticated, like the rest of the stand-in. Bad input answers 400 and an unknown app
404, both as ``{"error": "<what is wrong and how to fix it>"}``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..server import json_response
from .config import CONFIG_KEYS, check_keys
from .directory import TOKEN_EXCHANGE_AUDIENCE, UnknownAppError

if TYPE_CHECKING:
    from .standin import EntraStandIn

_Handler = Callable[[web.Request], Awaitable[web.Response]]


async def _body(request: web.Request, where: str, allowed: set[str], required: set[str] | None = None) -> Any:
    if not request.can_read_body:
        data: Any = {}
    else:
        try:
            data = await request.json()
        except json.JSONDecodeError:
            raise ValueError(f"{where}: the request body is not JSON; send a JSON object") from None
    return check_keys(where, data, allowed, required)


def _guarded(handler: _Handler) -> _Handler:
    async def run(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except UnknownAppError as exc:
            return json_response({"error": str(exc)}, status=404)
        except (ValueError, TypeError) as exc:
            return json_response({"error": str(exc)}, status=400)

    return run


def admin_routes(standin: EntraStandIn) -> list[web.RouteDef]:
    """Routes mirroring ``EntraStandIn``'s public methods."""

    async def describe(request: web.Request) -> web.Response:
        return json_response(standin.describe())

    async def load_config(request: web.Request) -> web.Response:
        standin.load_config(await _body(request, "POST /_standin/config", set(CONFIG_KEYS)))
        return json_response({"apps": [a.to_json() for a in standin.apps()]})

    async def list_apps(request: web.Request) -> web.Response:
        return json_response([a.to_json() for a in standin.apps()])

    async def register_app(request: web.Request) -> web.Response:
        keys = {
            "app_id",
            "display_name",
            "identifier_uri",
            "app_roles",
            "access_token_version",
            "exposed_scopes",
        }
        body = dict(await _body(request, "POST /_standin/apps", keys))
        app = standin.register_app(body.pop("app_id", None), **body)
        return json_response(app.to_json(), status=201)

    async def get_app(request: web.Request) -> web.Response:
        return json_response(standin.app(request.match_info["app_id"]).to_json())

    async def add_secret(request: web.Request) -> web.Response:
        body = await _body(request, "POST secrets", {"secret"})
        secret = standin.add_secret(request.match_info["app_id"], body.get("secret"))
        return json_response({"secret": secret}, status=201)

    async def disable(request: web.Request) -> web.Response:
        return json_response(standin.disable_app(request.match_info["app_id"]).to_json())

    async def enable(request: web.Request) -> web.Response:
        return json_response(standin.enable_app(request.match_info["app_id"]).to_json())

    async def add_federated(request: web.Request) -> web.Response:
        body = await _body(
            request, "POST federated-credentials", {"issuer", "subject", "audiences", "name"}, {"subject"}
        )
        fic = standin.add_federated_credential(
            request.match_info["app_id"],
            issuer=body.get("issuer"),
            subject=body["subject"],
            audiences=tuple(body.get("audiences", [TOKEN_EXCHANGE_AUDIENCE])),
            name=body.get("name", ""),
        )
        body = {
            "issuer": fic.issuer or standin.kubernetes_issuer_url,
            "subject": fic.subject,
            "audiences": list(fic.audiences),
            "name": fic.name,
        }
        return json_response(body, status=201)

    async def add_identity(request: web.Request) -> web.Response:
        body = await _body(request, "POST /_standin/managed-identities", {"client_id", "display_name"})
        identity = standin.add_managed_identity(
            body.get("client_id"), display_name=body.get("display_name", "stand-in identity")
        )
        return json_response(identity.to_json(), status=201)

    role_keys = {"client_app_id", "resource_app_id", "role"}

    async def assign_role(request: web.Request) -> web.Response:
        body = await _body(request, "POST /_standin/role-assignments", role_keys, role_keys)
        standin.assign_role(body["client_app_id"], body["resource_app_id"], body["role"])
        return json_response(dict(body), status=201)

    async def remove_role(request: web.Request) -> web.Response:
        body = await _body(request, "DELETE /_standin/role-assignments", role_keys, role_keys)
        standin.remove_role(body["client_app_id"], body["resource_app_id"], body["role"])
        return web.Response(status=204)

    async def pre_authorize(request: web.Request) -> web.Response:
        keys = {"resource_app_id", "client_app_id", "scopes"}
        body = await _body(request, "POST /_standin/pre-authorizations", keys, keys - {"scopes"})
        scopes = tuple(body.get("scopes", ["access_as_client"]))
        standin.pre_authorize(body["resource_app_id"], body["client_app_id"], scopes)
        return json_response(dict(body), status=201)

    async def service_account_token(request: web.Request) -> web.Response:
        body = dict(
            await _body(
                request,
                "POST /_standin/kubernetes/service-account-tokens",
                {"namespace", "service_account", "audience", "lifetime", "issued_at", "path"},
                {"namespace", "service_account"},
            )
        )
        path = body.pop("path", None)
        if path is None:
            return json_response({"token": standin.service_account_token(**body)}, status=201)
        written = standin.write_service_account_token(path, **body)
        return json_response({"path": str(written)}, status=201)

    async def token_requests(request: web.Request) -> web.Response:
        return json_response([r.to_json() for r in standin.token_requests])

    async def issued_tokens(request: web.Request) -> web.Response:
        return json_response(standin.issued_tokens)

    async def graph_requests(request: web.Request) -> web.Response:
        return json_response([r.to_json() for r in standin.graph_requests])

    async def clear_records(request: web.Request) -> web.Response:
        standin.clear_records()
        return web.Response(status=204)

    prefix = "/_standin"
    return [
        web.get(prefix, _guarded(describe)),
        web.post(f"{prefix}/config", _guarded(load_config)),
        web.get(f"{prefix}/apps", _guarded(list_apps)),
        web.post(f"{prefix}/apps", _guarded(register_app)),
        web.get(f"{prefix}/apps/{{app_id}}", _guarded(get_app)),
        web.post(f"{prefix}/apps/{{app_id}}/secrets", _guarded(add_secret)),
        web.post(f"{prefix}/apps/{{app_id}}/disable", _guarded(disable)),
        web.post(f"{prefix}/apps/{{app_id}}/enable", _guarded(enable)),
        web.post(f"{prefix}/apps/{{app_id}}/federated-credentials", _guarded(add_federated)),
        web.post(f"{prefix}/managed-identities", _guarded(add_identity)),
        web.post(f"{prefix}/role-assignments", _guarded(assign_role)),
        web.delete(f"{prefix}/role-assignments", _guarded(remove_role)),
        web.post(f"{prefix}/pre-authorizations", _guarded(pre_authorize)),
        web.post(f"{prefix}/kubernetes/service-account-tokens", _guarded(service_account_token)),
        web.get(f"{prefix}/token-requests", _guarded(token_requests)),
        web.get(f"{prefix}/issued-tokens", _guarded(issued_tokens)),
        web.get(f"{prefix}/graph-requests", _guarded(graph_requests)),
        web.delete(f"{prefix}/records", _guarded(clear_records)),
    ]
