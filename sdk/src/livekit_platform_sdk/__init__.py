"""Agent-side security wrapper around livekit-agents (Entra identity, platform-issued LiveKit tokens).

Importing the SDK installs the ``ctx.api`` guard (``guard``) in this process and in every job process that
re-imports the agent.
"""

# First: the modules imported below read it while the package is still initialising.
__version__ = "0.2.0"

from .guard import job_metadata
from .identity import CredentialError
from .registration import PlatformUnavailableError, RegistrationError, RegistrationRefusedError
from .settings import Settings, SettingsError
from .worker import PlatformError, Worker

__all__ = [
    "CredentialError",
    "PlatformError",
    "PlatformUnavailableError",
    "RegistrationError",
    "RegistrationRefusedError",
    "Settings",
    "SettingsError",
    "Worker",
    "__version__",
    "job_metadata",
]
