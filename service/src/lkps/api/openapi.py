"""The OpenAPI 3.1 document served at ``/openapi.json`` (maintained by hand; a test holds it to the code)."""

from __future__ import annotations

from typing import Any

from .. import __version__
from ..domain.ids import GUID

_ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ERROR, description)


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


_PAGING = [
    _query("limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}, "Rows per page."),
    _query(
        "offset",
        {"type": "integer", "minimum": 0, "maximum": 100_000, "default": 0},
        "Rows to skip: the previous page's `next_offset`.",
    ),
]
_ADMIN_ERRORS = {
    "400": _error("An unknown, repeated or invalid query parameter (named in `field`)."),
    "401": _error("Missing or invalid bearer token (entra mode)."),
    "403": _error(
        "The token lacks the admin app role (entra mode, default `Platform.Admin`), or the caller's client ID"
        " is not one of `LKPS_GATEWAY_ADMIN_CLIENT_IDS` (gateway mode)."
    ),
    "404": {
        "description": "The admin views are off: gateway mode without `LKPS_GATEWAY_ADMIN_CLIENT_IDS`, or"
        " entra mode with an empty `LKPS_ENTRA_ADMIN_ROLE`.",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    },
    "503": _error("The database could not be read."),
}
_TIME = {"type": ["string", "null"], "format": "date-time"}


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "LiveKit Platform Service",
            "version": __version__,
            "description": (
                "Trades an Entra identity for a scoped, time-limited LiveKit token; records agent"
                " registrations and session lifecycles. Identity comes from a validated Entra bearer token"
                " (identity mode `entra`) or from headers injected by a trusted gateway (identity mode"
                " `gateway`)."
            ),
        },
        "servers": [{"url": "/"}],
        "paths": {
            "/api/health": {
                "get": {
                    "operationId": "health",
                    "summary": "Liveness and readiness: database and LiveKit server reachability.",
                    "responses": {
                        "200": _json({"$ref": "#/components/schemas/Healthy"}, "Healthy."),
                        "503": _json({"$ref": "#/components/schemas/Unhealthy"}, "A dependency is down."),
                    },
                }
            },
            "/api/agent/register": {
                "post": {
                    "operationId": "registerAgent",
                    "summary": "Register an agent and get a LiveKit worker token.",
                    "description": (
                        "The agent's Entra app (client) ID becomes its LiveKit agent name. In `entra` mode"
                        " the token must carry the register app role (default `Agent.Register`)."
                    ),
                    "security": [{"entra": []}, {"gateway": []}],
                    "requestBody": {
                        "required": False,
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/RegisterRequest"}}
                        },
                    },
                    "responses": {
                        "200": _json({"$ref": "#/components/schemas/RegisterResponse"}, "Token issued."),
                        "400": _error(
                            "Invalid body, the caller's client ID missing or not a GUID, or an identity"
                            " header repeated (gateway mode)."
                        ),
                        "401": _error(
                            "Missing or invalid bearer token (entra mode), or the gateway's shared secret"
                            " missing or wrong (gateway mode)."
                        ),
                        "403": _error(
                            "The token lacks the register app role (entra mode); an application token"
                            " refused this way also revokes the agent's registration."
                        ),
                        "413": _error("The body exceeds 64 KiB."),
                        "503": _error("Entra signing keys unavailable (entra mode)."),
                    },
                }
            },
            "/api/session/start": {
                "post": {
                    "operationId": "startSession",
                    "summary": "Start a session: a room that dispatches the agent, and a token to join it.",
                    "security": [{"entra": []}, {"gateway": []}],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/SessionStartRequest"}
                            }
                        },
                    },
                    "responses": {
                        "200": _json(
                            {"$ref": "#/components/schemas/SessionStartResponse"}, "Room and token."
                        ),
                        "400": _error(
                            "Invalid agent_entra_app_id or metadata, missing caller identity, missing"
                            " client ID for an agent that enforces client authorization, or an identity"
                            " header repeated (gateway mode)."
                        ),
                        "401": _error(
                            "Missing or invalid bearer token (entra mode), or the gateway's shared secret"
                            " missing or wrong (gateway mode)."
                        ),
                        "403": _error(
                            "The token lacks the session app role (entra mode), or the client is not"
                            " pre-authorized for the agent's access_as_client scope."
                        ),
                        "404": _error(
                            "The agent is not registered: it never registered, its registration was revoked"
                            " (a registration refused for a removed app role, entra mode), or its latest"
                            " worker token expired without renewal."
                        ),
                        "413": _error("The body exceeds 64 KiB."),
                        "503": _error(
                            "Graph, the agent registry or the Entra signing keys are unavailable, or this"
                            " caller started more sessions with this agent in a second than names allow."
                        ),
                    },
                }
            },
            "/livekit/webhook": {
                "post": {
                    "operationId": "livekitWebhook",
                    "summary": "LiveKit server events (signed with the LiveKit API secret).",
                    "description": (
                        "`Authorization` carries the raw LiveKit JWT whose `sha256` claim is the body's hash."
                        " Events with an already stored id are acknowledged and change nothing."
                    ),
                    "security": [{"livekitWebhook": []}],
                    "requestBody": {
                        "required": True,
                        "content": {"application/webhook+json": {"schema": {"type": "object"}}},
                    },
                    "responses": {
                        "200": _json(
                            {"$ref": "#/components/schemas/WebhookResponse"}, "Stored (or a duplicate)."
                        ),
                        "401": _error("Missing or invalid signature, or the body does not match its hash."),
                        "413": _error("The body exceeds 1 MiB."),
                        "503": _error("The event could not be stored; LiveKit retries it."),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "Prometheus metrics in the text exposition format.",
                    "description": (
                        "Served on the service's port by default; with `LKPS_METRICS_PORT` on that port"
                        " instead (this one answers 404), and not at all with `LKPS_METRICS=false`. Every"
                        " metric is listed in the operating guide."
                    ),
                    "responses": {
                        "200": {
                            "description": "The metrics.",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/api/admin/agents": {
                "get": {
                    "operationId": "adminAgents",
                    "summary": "Registered agents: registration state, last registration, expiry, revocation,"
                    " enforcement (read-only).",
                    "security": [{"entra": []}, {"gateway": []}],
                    "parameters": [
                        _query(
                            "state",
                            {"enum": ["registered", "expired", "revoked"]},
                            "Only agents in this state.",
                        ),
                        *_PAGING,
                    ],
                    "responses": {
                        "200": _json({"$ref": "#/components/schemas/AdminAgents"}, "A page of agents."),
                        **_ADMIN_ERRORS,
                    },
                }
            },
            "/api/admin/sessions": {
                "get": {
                    "operationId": "adminSessions",
                    "summary": "Session lifecycle rows, newest first (read-only).",
                    "description": (
                        "A session's start is when it was requested through the service, else when its room"
                        " was created, else its row's last change; `since` and `until` filter on it."
                    ),
                    "security": [{"entra": []}, {"gateway": []}],
                    "parameters": [
                        _query("agent", {"type": "string", "format": "uuid"}, "Only this agent's sessions."),
                        _query(
                            "state",
                            {
                                "enum": [
                                    "requested",
                                    "room_created",
                                    "participant_joined",
                                    "active",
                                    "completed",
                                    "failed",
                                    "agent_never_joined",
                                ]
                            },
                            "Only sessions in this state.",
                        ),
                        _query(
                            "since",
                            {"type": "string", "format": "date-time"},
                            "Sessions started at or after this time (ISO 8601 with a zone).",
                        ),
                        _query(
                            "until",
                            {"type": "string", "format": "date-time"},
                            "Sessions started before this time (ISO 8601 with a zone).",
                        ),
                        *_PAGING,
                    ],
                    "responses": {
                        "200": _json({"$ref": "#/components/schemas/AdminSessions"}, "A page of sessions."),
                        **_ADMIN_ERRORS,
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document.",
                    "responses": {"200": _json({"type": "object"}, "The OpenAPI document.")},
                }
            },
        },
        "components": {
            "securitySchemes": {
                "entra": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "gateway": {"type": "apiKey", "in": "header", "name": "client-id"},
                "livekitWebhook": {"type": "apiKey", "in": "header", "name": "Authorization"},
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "detail"],
                    "properties": {
                        "error": {"type": "string", "description": "Machine-readable error code."},
                        "detail": {"type": "string", "description": "What was wrong and how to fix it."},
                        "field": {"type": "string", "description": "The body field or header at fault."},
                    },
                },
                "Healthy": {
                    "type": "object",
                    "required": ["status", "timestamp", "version"],
                    "properties": {
                        "status": {"const": "healthy"},
                        "timestamp": {"type": "string", "format": "date-time"},
                        "version": {"type": "string"},
                    },
                },
                "Unhealthy": {
                    "type": "object",
                    "required": ["status", "reason", "timestamp"],
                    "properties": {
                        "status": {"const": "unhealthy"},
                        "reason": {"enum": ["database", "livekit", "audit"]},
                        "timestamp": {"type": "string", "format": "date-time"},
                    },
                },
                "RegisterRequest": {
                    "type": "object",
                    "properties": {
                        "service_config": {
                            "type": "object",
                            "properties": {
                                "enforce_client_authz": {
                                    "type": "boolean",
                                    "default": True,
                                    "description": "Require clients to be pre-authorized for this agent.",
                                }
                            },
                        }
                    },
                },
                "RegisterResponse": {
                    "type": "object",
                    "required": ["livekit_token", "livekit_url", "expires_in"],
                    "properties": {
                        "livekit_token": {
                            "type": "string",
                            "description": "LiveKit JWT with the agent grant.",
                        },
                        "livekit_url": {"type": "string"},
                        "expires_in": {"type": "integer", "description": "Token lifetime in seconds."},
                        "agent_name": {
                            "type": "string",
                            "description": "Only for a user's (delegated) token: the developer agent's ID,"
                            " the name the worker announces and clients pass as agent_entra_app_id.",
                        },
                    },
                },
                "SessionStartRequest": {
                    "type": "object",
                    "required": ["agent_entra_app_id"],
                    "properties": {
                        "agent_entra_app_id": {
                            "type": "string",
                            "format": "uuid",
                            "pattern": f"^{GUID.pattern}$",
                            "description": "A GUID in its standard 8-4-4-4-12 form (either case).",
                        },
                        "metadata": {
                            "type": "object",
                            "maxProperties": 50,
                            "description": "Forwarded to the agent as job metadata; at most 10 KiB as JSON,"
                            " nested at most 32 levels, integers within the 64-bit range.",
                        },
                    },
                },
                "SessionStartResponse": {
                    "type": "object",
                    "required": ["room_name", "livekit_url", "participant_token"],
                    "properties": {
                        "room_name": {"type": "string"},
                        "livekit_url": {"type": "string"},
                        "participant_token": {"type": "string"},
                    },
                },
                "AdminAgents": {
                    "type": "object",
                    "required": ["agents", "next_offset"],
                    "properties": {
                        "agents": {"type": "array", "items": {"$ref": "#/components/schemas/AdminAgent"}},
                        "next_offset": {
                            "type": ["integer", "null"],
                            "description": "The next page's offset; null on the last page.",
                        },
                    },
                },
                "AdminAgent": {
                    "type": "object",
                    "required": ["entra_app_id", "state", "enforce_client_authz", "last_registered_at"],
                    "properties": {
                        "entra_app_id": {"type": "string", "format": "uuid"},
                        "state": {
                            "enum": ["registered", "expired", "revoked"],
                            "description": "revoked: a registration was refused for a missing app role and"
                            " none succeeded since; expired: the latest token expired without a renewal.",
                        },
                        "enforce_client_authz": {"type": "boolean"},
                        "first_registered_at": {"type": "string", "format": "date-time"},
                        "last_registered_at": {"type": "string", "format": "date-time"},
                        "registration_count": {"type": "integer"},
                        "last_worker_identity": {"type": "string"},
                        "token_expires_at": _TIME,
                        "revoked_at": _TIME,
                    },
                },
                "AdminSessions": {
                    "type": "object",
                    "required": ["sessions", "next_offset"],
                    "properties": {
                        "sessions": {"type": "array", "items": {"$ref": "#/components/schemas/AdminSession"}},
                        "next_offset": {
                            "type": ["integer", "null"],
                            "description": "The next page's offset; null on the last page.",
                        },
                    },
                },
                "AdminSession": {
                    "type": "object",
                    "required": ["room_name", "state", "updated_at"],
                    "properties": {
                        "room_name": {"type": "string"},
                        "state": {"type": "string", "description": "The session's lifecycle state."},
                        "room_sid": {"type": ["string", "null"]},
                        "agent_entra_app_id": {"type": ["string", "null"]},
                        "client_id": {"type": ["string", "null"]},
                        "participant_identity": {"type": ["string", "null"]},
                        "participant_cwid": {"type": ["string", "null"]},
                        "agent_identity": {"type": ["string", "null"]},
                        "requested_at": _TIME,
                        "room_created_at": _TIME,
                        "participant_joined_at": _TIME,
                        "agent_joined_at": _TIME,
                        "participant_left_at": _TIME,
                        "agent_left_at": _TIME,
                        "disconnect_reason": {"type": ["string", "null"]},
                        "agent_disconnect_reason": {"type": ["string", "null"]},
                        "finished_at": _TIME,
                        "session_duration_s": {"type": ["number", "null"]},
                        "participant_duration_s": {"type": ["number", "null"]},
                        "agent_join_delay_s": {"type": ["number", "null"]},
                        "updated_at": {"type": "string", "format": "date-time"},
                    },
                },
                "WebhookResponse": {
                    "type": "object",
                    "required": ["status", "event"],
                    "properties": {
                        "status": {"enum": ["processed", "duplicate", "ignored"]},
                        "event": {"type": "string"},
                    },
                },
            },
        },
    }
