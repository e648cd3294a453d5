"""Agent-side security wrapper around livekit-agents (Entra identity, platform-issued LiveKit tokens).

Names load lazily so that ``livekit_platform_sdk.testing`` does not pull in livekit-agents; importing
``Worker`` (or ``livekit_platform_sdk.agents``) installs the ``ctx.api`` guard.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Worker": "worker",
    "PlatformError": "worker",
    "Settings": "settings",
    "SettingsError": "settings",
    "CredentialError": "identity",
    "RegistrationError": "registration",
    "RegistrationRefusedError": "registration",
    "PlatformUnavailableError": "registration",
    "job_metadata": "guard",
}

__all__ = ["__version__", *sorted(_EXPORTS)]

if TYPE_CHECKING:
    from .guard import job_metadata as job_metadata
    from .identity import CredentialError as CredentialError
    from .registration import PlatformUnavailableError as PlatformUnavailableError
    from .registration import RegistrationError as RegistrationError
    from .registration import RegistrationRefusedError as RegistrationRefusedError
    from .settings import Settings as Settings
    from .settings import SettingsError as SettingsError
    from .worker import PlatformError as PlatformError
    from .worker import Worker as Worker


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
