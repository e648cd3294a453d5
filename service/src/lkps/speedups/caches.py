"""Speedup ``caches``: results the request path would compute again and again, kept; randomness fetched in
bulk; the gateway's headers read in one pass. Each class is the plain one with the same answers, found
faster."""

from __future__ import annotations

import functools
import hmac
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


# The identities kept, each keyed by the raw values of the identity headers (all of them at most
# ``MAX_CACHED_KEY`` bytes together): bounded at about MAX_IDENTITIES * MAX_CACHED_KEY.
MAX_IDENTITIES = 1024
MAX_CACHED_KEY = 2 * MAX_CACHED_VALUE


class CachedGatewayIdentity(GatewayIdentity):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._wanted = {name.encode("latin-1"): name for name in self.read}
        # The raw (lower-cased, as ASGI servers give them) names of the headers ``identity`` reads, in its
        # order; None for a header switched off (never present).
        identity_names = (self._client_id, self._user_id, self._email, *self._profiles)
        self._identity_names = tuple(name.encode("latin-1") if name else None for name in identity_names)
        self._raw_secret_header = self._secret_header.encode("latin-1") if self._secret_header else None
        self._identities: dict[tuple[bytes | None, ...], Identity] = {}
        # The same callers come back with the same profile, and decoding it costs more than the lookup;
        # bounded at maxsize * MAX_CACHED_VALUE (a refused value raises, never cached).
        self._profile = functools.lru_cache(maxsize=1024)(super().profile)

    async def resolve(self, headers: Headers, endpoint: Endpoint) -> Identity:
        raw = headers.raw
        table: dict[bytes | None, bytes] = dict(raw)
        if len(table) != len(raw):
            return self._resolve_repeated(raw)  # some header repeats (perhaps an identity header: 400)
        # No header repeats: the secret's raw bytes are what check_secret would encode, and a caller seen
        # before (the same identity headers, byte for byte) gets the identity computed then.
        if self._secret is not None:
            sent = table.get(self._raw_secret_header)
            if sent is None or not hmac.compare_digest(sent, self._secret):
                self.check_secret(None)  # raises: the same 401 for a missing or a wrong secret
        key = tuple(map(table.get, self._identity_names))
        identity = self._identities.get(key)
        if identity is None:
            identity = self._identity_of(key)
        return identity

    def _identity_of(self, key: tuple[bytes | None, ...]) -> Identity:
        found = {
            name: value.decode("latin-1")
            for name, value in zip(self._identity_names, key, strict=True)
            if name is not None and value is not None
        }
        identity = self.identity(lambda name: found.get(name.encode("latin-1")) if name else None)
        if sum(len(value) for value in key if value is not None) <= MAX_CACHED_KEY:
            if len(self._identities) >= MAX_IDENTITIES:
                del self._identities[next(iter(self._identities))]  # the oldest
            self._identities[key] = identity
        return identity

    def _resolve_repeated(self, raw: list[tuple[bytes, bytes]]) -> Identity:
        # One pass over the raw (already lower-cased) ASGI headers instead of a scan per name.
        found: dict[str, str] = {}
        for raw_name, value in raw:
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
