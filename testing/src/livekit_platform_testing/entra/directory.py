"""The stand-in tenant's directory: app registrations, secrets, federated credentials, role assignments.

Every method takes the directory's lock, so tests can change the tenant while clients are getting tokens.
"""

from __future__ import annotations

import hmac
import secrets
import string
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

# Microsoft Graph is a first-party resource every tenant has; its app ID and its application
# permissions' role IDs are the real, documented ones.
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH_RESOURCE = "https://graph.microsoft.com"
GRAPH_SCOPE = f"{GRAPH_RESOURCE}/.default"  # what a client-credentials client asks Graph tokens for
_GRAPH_ROLE_IDS = {
    "Application.Read.All": "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30",
    "Application.ReadWrite.All": "1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9",
    "Directory.Read.All": "7ab1d382-f21e-4acd-a863-ba3e13f7da61",
}
TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"  # noqa: S105 (an audience URI, not a secret)

# Stable IDs (same app ID and name -> same ID in every run) keep Graph answers comparable across runs.
_ID_NAMESPACE = uuid.UUID("4d1c6f62-3f0b-4e43-9a55-0a3c2c7e5b11")


def stable_id(*parts: str) -> str:
    return str(uuid.uuid5(_ID_NAMESPACE, "/".join(parts)))


class UnknownAppError(LookupError):
    """No app registration or managed identity has the given app (client) ID."""


@dataclass(frozen=True)
class FederatedCredential:
    """A federated identity credential: assertions whose ``iss``/``sub``/``aud`` match may sign the app in.

    ``issuer`` is None for "this stand-in's Kubernetes service-account issuer", resolved when an assertion
    arrives, so it can be configured before the server has a port.
    """

    issuer: str | None
    subject: str
    audiences: tuple[str, ...] = (TOKEN_EXCHANGE_AUDIENCE,)
    name: str = ""


@dataclass(frozen=True)
class AppRegistration:
    """A snapshot of one app registration (or managed identity) and its service principal.

    ``app_id`` is the client ID; ``object_id`` the application object's ID (what Graph calls ``id``);
    ``service_principal_id`` the enterprise app's object ID, which tokens carry as ``oid``/``sub``.
    ``exposed_scopes`` and ``app_role_ids`` map each value to its stable ID. ``access_token_version`` is
    the resource side's ``api.requestedAccessTokenVersion``: 2 puts the app ID in ``aud`` and issues from
    the ``/v2.0`` issuer; 1 puts the requested identifier URI in ``aud`` and issues from the v1 issuer.
    """

    app_id: str
    object_id: str
    service_principal_id: str
    display_name: str
    identifier_uris: tuple[str, ...]
    app_role_ids: dict[str, str]
    access_token_version: int
    exposed_scopes: dict[str, str]
    enabled: bool
    managed_identity: bool
    built_in: bool

    @property
    def app_roles(self) -> tuple[str, ...]:
        return tuple(self.app_role_ids)

    def to_json(self) -> dict[str, Any]:
        return {
            "app_id": self.app_id,
            "object_id": self.object_id,
            "service_principal_id": self.service_principal_id,
            "display_name": self.display_name,
            "identifier_uris": list(self.identifier_uris),
            "app_roles": dict(self.app_role_ids),
            "access_token_version": self.access_token_version,
            "exposed_scopes": dict(self.exposed_scopes),
            "enabled": self.enabled,
            "managed_identity": self.managed_identity,
            "built_in": self.built_in,
        }


@dataclass
class _App:
    app_id: str
    display_name: str
    identifier_uris: list[str]
    app_role_ids: dict[str, str]
    access_token_version: int
    exposed_scopes: dict[str, str]
    managed_identity: bool = False
    built_in: bool = False
    enabled: bool = True
    secrets: list[str] = field(default_factory=list)
    federated_credentials: list[FederatedCredential] = field(default_factory=list)

    def snapshot(self) -> AppRegistration:
        return AppRegistration(
            app_id=self.app_id,
            object_id=stable_id("application", self.app_id),
            service_principal_id=stable_id("servicePrincipal", self.app_id),
            display_name=self.display_name,
            identifier_uris=tuple(self.identifier_uris),
            app_role_ids=dict(self.app_role_ids),
            access_token_version=self.access_token_version,
            exposed_scopes=dict(self.exposed_scopes),
            enabled=self.enabled,
            managed_identity=self.managed_identity,
            built_in=self.built_in,
        )


def _normalize_resource(value: str) -> str:
    return value.strip().rstrip("/").lower()


def _new_secret() -> str:
    # Shaped like Entra's generated secrets: three characters, a "8Q~" marker, then random text (40 in all).
    alphabet = string.ascii_letters + string.digits
    head = "".join(secrets.choice(alphabet) for _ in range(3))
    tail = "".join(secrets.choice(alphabet + "-_.~") for _ in range(34))
    return f"{head}8Q~{tail}"


class Directory:
    """The tenant's objects; thread-safe. Raises ``ValueError``/``UnknownAppError`` naming the argument."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._apps: dict[str, _App] = {}
        self._roles: set[tuple[str, str, str]] = set()
        self._pre_authorized: dict[tuple[str, str], list[str]] = {}
        graph = _App(
            app_id=GRAPH_APP_ID,
            display_name="Microsoft Graph",
            identifier_uris=[GRAPH_RESOURCE],
            app_role_ids=dict(_GRAPH_ROLE_IDS),
            access_token_version=1,
            exposed_scopes={},
            built_in=True,
        )
        self._apps[_key(GRAPH_APP_ID)] = graph

    def _get(self, app_id: str, argument: str = "app_id") -> _App:
        app = self._apps.get(_key(app_id))
        if app is None:
            raise UnknownAppError(
                f"{argument}={app_id!r} is not registered in the stand-in tenant: "
                "call register_app() or add_managed_identity() first"
            )
        return app

    # -- registration -----------------------------------------------------------------------------------

    def register_app(
        self,
        app_id: str | None,
        *,
        display_name: str,
        identifier_uri: str | None,
        app_roles: Iterable[str],
        access_token_version: int,
        exposed_scopes: Iterable[str],
        managed_identity: bool = False,
    ) -> AppRegistration:
        app_id = app_id or str(uuid.uuid4())
        _require_guid(app_id, "app_id")
        if access_token_version not in (1, 2):
            raise ValueError(
                f"access_token_version={access_token_version!r} is not supported: use 1 or 2 "
                "(Entra's api.requestedAccessTokenVersion)"
            )
        uris = [] if managed_identity else [identifier_uri or f"api://{app_id}"]
        app = _App(
            app_id=app_id,
            display_name=display_name,
            identifier_uris=uris,
            app_role_ids={
                role: stable_id("appRole", app_id, role) for role in _unique(app_roles, "app_roles")
            },
            access_token_version=access_token_version,
            exposed_scopes={
                s: stable_id("scope", app_id, s) for s in _unique(exposed_scopes, "exposed_scopes")
            },
            managed_identity=managed_identity,
        )
        with self._lock:
            if _key(app_id) in self._apps:
                raise ValueError(f"app_id={app_id!r} is already registered: pick another ID or omit it")
            taken = {_normalize_resource(u) for other in self._apps.values() for u in other.identifier_uris}
            for uri in uris:
                if _normalize_resource(uri) in taken:
                    raise ValueError(
                        f"identifier_uri={uri!r} is already used by another app: identifier URIs are unique "
                        "in a tenant"
                    )
            self._apps[_key(app_id)] = app
            return app.snapshot()

    def app(self, app_id: str) -> AppRegistration:
        with self._lock:
            return self._get(app_id).snapshot()

    def apps(self) -> list[AppRegistration]:
        with self._lock:
            return [a.snapshot() for a in self._apps.values()]

    def add_secret(self, app_id: str, secret: str | None) -> str:
        value = secret if secret is not None else _new_secret()
        if not isinstance(value, str) or not value:
            raise ValueError("secret is not a non-empty string: pass one, or None to generate one")
        with self._lock:
            app = self._get(app_id)
            if app.managed_identity or app.built_in:
                raise ValueError(
                    f"app_id={app_id!r} is a managed identity or Microsoft service: it cannot have client "
                    "secrets (use a federated credential or the IMDS endpoint)"
                )
            app.secrets.append(value)
        return value

    def remove_secret(self, app_id: str, secret: str) -> None:
        with self._lock:
            app = self._get(app_id)
            if secret not in app.secrets:
                raise ValueError(f"secret is not one of app_id={app_id!r}'s secrets: nothing to remove")
            app.secrets.remove(secret)

    def set_enabled(self, app_id: str, enabled: bool) -> AppRegistration:
        with self._lock:
            app = self._get(app_id)
            app.enabled = enabled
            return app.snapshot()

    def add_federated_credential(self, app_id: str, credential: FederatedCredential) -> None:
        if not credential.subject:
            raise ValueError("subject is empty: pass the assertion's expected 'sub' claim")
        if not credential.audiences:
            raise ValueError(f"audiences is empty: pass at least one, usually {TOKEN_EXCHANGE_AUDIENCE!r}")
        with self._lock:
            app = self._get(app_id)
            if app.built_in:
                raise ValueError(
                    f"app_id={app_id!r} is a Microsoft service: it cannot have federated credentials"
                )
            app.federated_credentials.append(credential)

    def assign_role(self, client_app_id: str, resource_app_id: str, role: str) -> None:
        with self._lock:
            client = self._get(client_app_id, "client_app_id")
            resource = self._get(resource_app_id, "resource_app_id")
            if role not in resource.app_role_ids:
                raise ValueError(
                    f"role={role!r} is not an app role of resource_app_id={resource_app_id!r} "
                    f"(it has {sorted(resource.app_role_ids)}): declare it with register_app(app_roles=[...])"
                )
            self._roles.add((_key(client.app_id), _key(resource.app_id), role))

    def remove_role(self, client_app_id: str, resource_app_id: str, role: str) -> None:
        with self._lock:
            entry = (_key(client_app_id), _key(resource_app_id), role)
            if entry not in self._roles:
                raise ValueError(
                    f"role={role!r} is not assigned to client_app_id={client_app_id!r} on "
                    f"resource_app_id={resource_app_id!r}: nothing to remove"
                )
            self._roles.remove(entry)

    def roles(self, client_app_id: str, resource_app_id: str) -> list[str]:
        with self._lock:
            client, resource = _key(client_app_id), _key(resource_app_id)
            return sorted(r for c, res, r in self._roles if c == client and res == resource)

    def pre_authorize(self, resource_app_id: str, client_app_id: str, scopes: Sequence[str]) -> None:
        with self._lock:
            resource = self._get(resource_app_id, "resource_app_id")
            self._get(client_app_id, "client_app_id")
            missing = [s for s in scopes if s not in resource.exposed_scopes]
            if missing or not scopes:
                raise ValueError(
                    f"scopes={list(scopes)!r} must be non-empty scopes exposed by resource_app_id="
                    f"{resource_app_id!r} (it exposes {sorted(resource.exposed_scopes)}): declare them with "
                    "register_app(exposed_scopes=[...])"
                )
            current = self._pre_authorized.setdefault((_key(resource.app_id), client_app_id), [])
            current.extend(s for s in scopes if s not in current)

    def pre_authorized(self, resource_app_id: str) -> list[tuple[str, list[str]]]:
        """(client app ID, scope IDs) pairs for Graph's ``api.preAuthorizedApplications``."""
        with self._lock:
            resource = self._get(resource_app_id, "resource_app_id")
            return [
                (client, [resource.exposed_scopes[s] for s in scopes])
                for (res, client), scopes in self._pre_authorized.items()
                if res == _key(resource.app_id)
            ]

    # -- lookups for the token endpoint ---------------------------------------------------------------------

    def find(self, app_id: str) -> AppRegistration | None:
        with self._lock:
            app = self._apps.get(_key(app_id))
            return app.snapshot() if app else None

    def find_resource(self, resource: str) -> AppRegistration | None:
        """The app whose client ID or one of whose identifier URIs is ``resource`` (case-insensitive)."""
        wanted = _normalize_resource(resource)
        with self._lock:
            for app in self._apps.values():
                if wanted == _key(app.app_id) or wanted in {
                    _normalize_resource(u) for u in app.identifier_uris
                }:
                    return app.snapshot()
        return None

    def secret_matches(self, app_id: str, presented: str) -> bool:
        with self._lock:
            stored = list(self._get(app_id).secrets)
        # Compare against every secret in constant time so timing does not reveal which prefix matched.
        matches = [hmac.compare_digest(s.encode(), presented.encode()) for s in stored]
        return any(matches)

    def federated_credentials(self, app_id: str) -> list[FederatedCredential]:
        with self._lock:
            return list(self._get(app_id).federated_credentials)


def _key(app_id: str) -> str:
    return app_id.strip().lower()


def _require_guid(value: str, name: str) -> None:
    try:
        uuid.UUID(value)
    except ValueError:
        raise ValueError(
            f"{name}={value!r} is not a GUID: Entra app (client) IDs are GUIDs, pass one or omit it"
        ) from None


def _unique(values: Iterable[str], name: str) -> list[str]:
    if isinstance(values, str):
        raise ValueError(f"{name}={values!r} is a string: pass a list of strings")
    out: list[str] = []
    for v in values:
        if not isinstance(v, str) or not v or v in out:
            raise ValueError(f"{name} contains an empty or repeated value {v!r}: list each value once")
        out.append(v)
    return out
