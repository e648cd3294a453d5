"""Preloads an Entra stand-in from a JSON document (``--config``, or ``POST /_standin/config``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .directory import TOKEN_EXCHANGE_AUDIENCE

if TYPE_CHECKING:
    from .standin import EntraStandIn

_APP_KEYS = {
    "app_id",
    "display_name",
    "identifier_uri",
    "app_roles",
    "access_token_version",
    "exposed_scopes",
    "secrets",
    "disabled",
    "federated_credentials",
}
_IDENTITY_KEYS = {"client_id", "display_name", "federated_credentials"}
_FIC_KEYS = {"issuer", "subject", "audiences", "name"}
CONFIG_KEYS = frozenset({"apps", "managed_identities", "role_assignments", "pre_authorizations"})


def check_keys(
    where: str, item: Any, allowed: set[str], required: set[str] | None = None
) -> Mapping[str, Any]:
    if not isinstance(item, Mapping):
        raise ValueError(f"{where} must be a JSON object, got {type(item).__name__}")
    unknown = sorted(set(item) - allowed)
    if unknown:
        raise ValueError(f"{where} has unknown keys {unknown}: allowed keys are {sorted(allowed)}")
    missing = sorted((required or set()) - set(item))
    if missing:
        raise ValueError(f"{where} is missing {missing}")
    return item


def _list(where: str, value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"{where} must be a JSON list, got {type(value).__name__}")
    return value


def _federated(standin: EntraStandIn, where: str, app_id: str, items: Any) -> None:
    for i, raw in enumerate(_list(where, items)):
        fic = check_keys(f"{where}[{i}]", raw, _FIC_KEYS, {"subject"})
        standin.add_federated_credential(
            app_id,
            issuer=fic.get("issuer"),
            subject=fic["subject"],
            audiences=tuple(fic.get("audiences", [TOKEN_EXCHANGE_AUDIENCE])),
            name=fic.get("name", ""),
        )


def apply_config(standin: EntraStandIn, config: Mapping[str, Any]) -> None:
    """Apply ``config`` in order: apps, managed identities, role assignments, pre-authorizations."""
    top = check_keys("config", config, set(CONFIG_KEYS))
    for i, raw in enumerate(_list("apps", top.get("apps", []))):
        where = f"apps[{i}]"
        item = check_keys(where, raw, _APP_KEYS)
        app = standin.register_app(
            item.get("app_id"),
            display_name=item.get("display_name", "stand-in app"),
            identifier_uri=item.get("identifier_uri"),
            app_roles=_list(f"{where}.app_roles", item.get("app_roles", [])),
            access_token_version=item.get("access_token_version", 2),
            exposed_scopes=_list(f"{where}.exposed_scopes", item.get("exposed_scopes", [])),
        )
        for secret in _list(f"{where}.secrets", item.get("secrets", [])):
            standin.add_secret(app.app_id, secret)
        _federated(
            standin, f"{where}.federated_credentials", app.app_id, item.get("federated_credentials", [])
        )
        if item.get("disabled", False):
            standin.disable_app(app.app_id)
    for i, raw in enumerate(_list("managed_identities", top.get("managed_identities", []))):
        where = f"managed_identities[{i}]"
        item = check_keys(where, raw, _IDENTITY_KEYS)
        identity = standin.add_managed_identity(
            item.get("client_id"), display_name=item.get("display_name", "stand-in identity")
        )
        _federated(
            standin, f"{where}.federated_credentials", identity.app_id, item.get("federated_credentials", [])
        )
    for i, raw in enumerate(_list("role_assignments", top.get("role_assignments", []))):
        keys = {"client_app_id", "resource_app_id", "role"}
        item = check_keys(f"role_assignments[{i}]", raw, keys, keys)
        standin.assign_role(item["client_app_id"], item["resource_app_id"], item["role"])
    for i, raw in enumerate(_list("pre_authorizations", top.get("pre_authorizations", []))):
        item = check_keys(
            f"pre_authorizations[{i}]",
            raw,
            {"resource_app_id", "client_app_id", "scopes"},
            {"resource_app_id", "client_app_id"},
        )
        standin.pre_authorize(
            item["resource_app_id"], item["client_app_id"], tuple(item.get("scopes", ["access_as_client"]))
        )
