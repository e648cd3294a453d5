"""Token renewal: when to renew, where the current token lives, and the loop that keeps it fresh."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone

from .identity import CredentialError
from .registration import PlatformClient, PlatformGrant, RegistrationError, RegistrationRefusedError
from .retry import Timing

logger = logging.getLogger("livekit_platform_sdk")

DEFAULT_RENEW_MARGIN = 300.0


def renewal_time(grant: PlatformGrant, margin: float = DEFAULT_RENEW_MARGIN) -> float:
    """``max(issued + lifetime/2, expiry - margin)``: 1 h tokens renew at 55 min, short ones at half-life."""
    return max(grant.issued_at + grant.lifetime / 2, grant.expires_at - margin)


class TokenStore:
    """The newest platform grant; the worker reads it on every (re)connect, renewal replaces it."""

    def __init__(self) -> None:
        self._grant: PlatformGrant | None = None
        self._listeners: list[Callable[[PlatformGrant], None]] = []

    @property
    def current(self) -> PlatformGrant:
        if self._grant is None:
            raise RuntimeError("no platform token yet: the worker has not registered with the platform")
        return self._grant

    @property
    def has_grant(self) -> bool:
        return self._grant is not None

    def valid_at(self, now: float) -> bool:
        return self._grant is not None and self._grant.valid_at(now)

    def replace(self, grant: PlatformGrant) -> None:
        self._grant = grant
        for listener in self._listeners:
            listener(grant)

    def on_replace(self, listener: Callable[[PlatformGrant], None]) -> None:
        self._listeners.append(listener)


class Renewer:
    """Renews the stored grant before it expires, forever; calls ``on_fatal`` once when it cannot.

    While the platform is unreachable the current token stays in use and renewal retries with backoff until
    the token expires. A refusal (401/403: identity revoked) or expiry without a successor is fatal.
    """

    def __init__(
        self,
        store: TokenStore,
        client: PlatformClient,
        on_fatal: Callable[[str], Awaitable[None]],
        *,
        margin: float = DEFAULT_RENEW_MARGIN,
        timing: Timing | None = None,
    ) -> None:
        self._store = store
        self._client = client
        self._on_fatal = on_fatal
        self._margin = margin
        self._timing = timing or Timing()
        self.renewals = 0

    async def run(self, *, at_once: bool = False) -> None:
        """Renew forever; ``at_once``: the first renewal now, not at its usual time."""
        timing = self._timing
        while True:
            grant = self._store.current
            wait = 0.0 if at_once else renewal_time(grant, self._margin) - timing.clock()
            at_once = False
            if wait > 0:
                await timing.sleep(wait)
            try:
                fresh = await self._client.register(
                    renewal=True, deadline=grant.expires_at, retry_credential_errors=True
                )
            except RegistrationRefusedError as exc:
                await self._on_fatal(
                    f"the platform refused to renew the LiveKit token (identity revoked?): {exc}"
                )
                return
            except (RegistrationError, CredentialError) as exc:
                expiry = datetime.fromtimestamp(grant.expires_at, timezone.utc).isoformat()
                await self._on_fatal(f"could not renew the LiveKit token (valid until {expiry}): {exc}")
                return
            self._store.replace(fresh)
            self.renewals += 1
            logger.info(
                "renewed the platform LiveKit token",
                extra={"expires_at": fresh.expires_at_iso, "renewals": self.renewals},
            )
