"""Speedup ``caches``: results the request path would compute again and again, kept; randomness fetched in
bulk; the gateway's headers read in one pass. Each class is the plain one with the same answers, found
faster."""

from __future__ import annotations

import functools
import os
import secrets

from starlette.datastructures import Headers

from ..auth.gateway import GatewayIdentity, ProfileFields, repeated
from ..auth.identity import Endpoint, Identity
from ..domain.ids import Ids
from ..domain.room_names import RANDOM_BYTES, RoomNames
from ..settings import Settings


class FastIds(Ids):
    def __init__(self) -> None:
        # The same few agent IDs arrive on every request, and parsing one costs more than the lookup.
        self._canonical = functools.lru_cache(maxsize=4096)(super().canonical)

    def canonical(self, value: str) -> str:
        # A GUID in any form uuid.UUID takes is under 50 characters (braces, urn:uuid:, hyphens); a longer
        # value is parsed, never cached.
        return self._canonical(value) if len(value) <= 64 else super().canonical(value)

    def new(self) -> str:
        """What ``str(uuid.uuid4())`` gives, at under half the cost (no ``UUID`` object between the random
        bytes and the text)."""
        raw = bytearray(os.urandom(16))
        raw[6] = raw[6] & 0x0F | 0x40  # version 4
        raw[8] = raw[8] & 0x3F | 0x80  # RFC 4122 variant
        h = raw.hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class BufferedRoomNames(RoomNames):
    def __init__(self) -> None:
        # The same callers come back, and the substitution costs more than the lookup.
        self._cwid = functools.lru_cache(maxsize=4096)(super().cwid)
        # Random bytes fetched 512 at a time: one getrandom system call per 32 names instead of one each.
        self._random = b""
        self._taken = 0

    def cwid(self, raw: str) -> str:
        return self._cwid(raw) if len(raw) <= MAX_CACHED_VALUE else super().cwid(raw)

    def random_part(self) -> str:
        if self._taken >= len(self._random):
            self._random, self._taken = secrets.token_bytes(512), 0
        start = self._taken
        self._taken += RANDOM_BYTES
        return self._random[start : start + RANDOM_BYTES].hex()


# Values longer than this are computed, never cached: a cache keyed by what callers send holds at most
# ``maxsize`` times this, whatever they send (a profile is a few hundred bytes, a CWID a few dozen).
MAX_CACHED_VALUE = 1024


class CachedGatewayIdentity(GatewayIdentity):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._wanted = {name.encode("latin-1"): name for name in self.read}
        # The same callers come back with the same profile, and decoding it costs more than the lookup;
        # bounded at maxsize * MAX_CACHED_VALUE (a refused value raises, never cached).
        self._profile = functools.lru_cache(maxsize=1024)(super().profile)

    async def resolve(self, headers: Headers, endpoint: Endpoint) -> Identity:
        # One pass over the raw (already lower-cased) ASGI headers instead of a scan per name.
        found: dict[str, str] = {}
        for raw_name, value in headers.raw:
            name = self._wanted.get(raw_name)
            if name is not None:
                if name in found:
                    raise repeated(name)
                found[name] = value.decode("latin-1")
        self.check_secret(found.get(self._secret_header))
        return self.identity(found.get)

    def profile(self, raw: str, header: str) -> ProfileFields:
        if len(raw) > MAX_CACHED_VALUE:
            return super().profile(raw, header)
        return self._profile(raw, header)
