"""Speedup ``webhooks``: deliveries verified as livekit-api's ``WebhookReceiver`` verifies them (the plain
:class:`lkps.auth.webhooks.WebhookVerifier`), and read from their JSON, at a tenth of the cost.

``WebhookReceiver.receive`` costs ~350 µs a delivery here: PyJWT re-validates the HMAC key on every call
(PEM, SSH, DER and JWK probes) and scans each token segment character by character, then protobuf parses the
body in pure Python. That alone would hold ingestion below 3,000 events/s on one core, before HTTP and the
database. So a delivery in the shape LiveKit sends takes a fast path that makes the same checks in the same
order: a compact JWS with an HS256 header, the HMAC-SHA256 signature, ``exp`` (required), ``nbf``, ``iat``,
``iss`` (the API key), ``sub`` and ``jti`` as PyJWT checks them with livekit-api's leeway, a non-empty
``sha256`` claim equal to the body's hash, and a JSON object body.

The fast path only ever says yes. Anything it does not recognise or that fails a check goes to
``WebhookReceiver``, whose verdict stands: every 401 is livekit-api's, and tests hold the fast path to
accepting exactly what ``WebhookReceiver`` accepts (tests/service/speedups/test_webhooks.py). One difference
is deliberate: the fast path does not schema-check body fields the service does not read (see
:mod:`lkps.speedups.event_json`); such a body is authentic (its hash is signed) and is stored as sent.
A body with a key repeated in any object, or nested deeper than any event, also goes to ``WebhookReceiver``
(whose protobuf parser refuses repeated keys, where orjson would keep the last copy).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from jwt.algorithms import HMACAlgorithm
from jwt.exceptions import InvalidKeyError
from livekit.api.access_token import DEFAULT_LEEWAY
from livekit.protocol.models import ParticipantInfo, Room
from livekit.protocol.webhook import WebhookEvent

from ..auth.webhooks import WebhookVerifier
from ..domain.events import Delivery, LiveKitEvent, Participant
from .event_json import Field, NotCanonicalError, keys_unique
from .tokens import base64url

_SEGMENT = re.compile(rb"[A-Za-z0-9_-]*")
_HEADERS = ({"alg": "HS256", "typ": "JWT"}, {"alg": "HS256"})
# Claims TokenVerifier turns into grant objects: each must be absent or an object, or it fails there.
_GRANT_OBJECTS = ("video", "sip", "inference", "observability")
_NULLABLE_GRANT_OBJECTS = ("agent", "agentEndpoint", "agentThread")
_GRANT_CLAIMS = frozenset(_GRANT_OBJECTS + _NULLABLE_GRANT_OBJECTS)

_URL_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
# A segment re-encodes to itself (PyJWT's canonical check) when its last character's unused bits are zero:
# 4 of them with 2 characters in the last group, 2 with 3.
_CANONICAL_LAST = {
    2: frozenset(c for i, c in enumerate(_URL_ALPHABET) if i % 16 == 0),
    3: frozenset(c for i, c in enumerate(_URL_ALPHABET) if i % 4 == 0),
}
_PADDING = {0: b"", 2: b"==", 3: b"="}

# The WebhookEvent fields the service reads, as protobuf's JSON mapping names them.
_EVENT_NAME, _ID = Field(WebhookEvent, "event"), Field(WebhookEvent, "id")
_CREATED_AT = Field(WebhookEvent, "created_at")
_ROOM, _PARTICIPANT = Field(WebhookEvent, "room"), Field(WebhookEvent, "participant")
_ROOM_NAME, _ROOM_SID = Field(Room, "name"), Field(Room, "sid")
_CREATION_TIME, _CREATION_TIME_MS = Field(Room, "creation_time"), Field(Room, "creation_time_ms")
_IDENTITY, _KIND = Field(ParticipantInfo, "identity"), Field(ParticipantInfo, "kind")
_JOINED_AT, _JOINED_AT_MS = Field(ParticipantInfo, "joined_at"), Field(ParticipantInfo, "joined_at_ms")
_DISCONNECT_REASON = Field(ParticipantInfo, "disconnect_reason")
_NO_PARTICIPANT = Participant()  # what protobuf gives for an event without one


# The names protobuf also takes for those fields (created_at for createdAt, ...), per message: an object
# with none of them holds each field under its JSON name or not at all.
def _proto_names(*fields: Field) -> frozenset[str]:
    return frozenset(field.proto_name for field in fields if field.proto_name is not None)


_EVENT_PROTO_NAMES = _proto_names(_EVENT_NAME, _ID, _CREATED_AT, _ROOM, _PARTICIPANT)
_ROOM_PROTO_NAMES = _proto_names(_ROOM_NAME, _ROOM_SID, _CREATION_TIME, _CREATION_TIME_MS)
_PARTICIPANT_PROTO_NAMES = _proto_names(_IDENTITY, _KIND, _JOINED_AT, _JOINED_AT_MS, _DISCONNECT_REASON)
_ROOM_JSON, _PARTICIPANT_JSON = _ROOM.json_name, _PARTICIPANT.json_name
_EVENT_JSON, _ID_JSON, _CREATED_AT_JSON = _EVENT_NAME.json_name, _ID.json_name, _CREATED_AT.json_name
_ROOM_NAME_JSON, _ROOM_SID_JSON = _ROOM_NAME.json_name, _ROOM_SID.json_name
_CREATION_TIME_JSON, _CREATION_TIME_MS_JSON = _CREATION_TIME.json_name, _CREATION_TIME_MS.json_name
_IDENTITY_JSON, _KIND_JSON = _IDENTITY.json_name, _KIND.json_name
_JOINED_AT_JSON, _JOINED_AT_MS_JSON = _JOINED_AT.json_name, _JOINED_AT_MS.json_name
_DISCONNECT_REASON_JSON = _DISCONNECT_REASON.json_name


def read_event(event: Mapping[str, Any]) -> LiveKitEvent:
    """The fields :meth:`LiveKitEvent.from_message` reads, from the event's JSON as protobuf would parse
    it; :class:`NotCanonicalError` for a field in a form only protobuf's parser can settle."""
    room = _ROOM.message_of(event.get(_ROOM_JSON))
    participant = _PARTICIPANT.message_of(event.get(_PARTICIPANT_JSON))
    # (asked of the keys: a view checks the smaller side, here the one to three names, not every key)
    if not (
        event.keys().isdisjoint(_EVENT_PROTO_NAMES)
        and room.keys().isdisjoint(_ROOM_PROTO_NAMES)
        and participant.keys().isdisjoint(_PARTICIPANT_PROTO_NAMES)
    ):
        return _read_event_any_names(event)
    # As LiveKit writes it: every field under its JSON name, so each is a plain lookup.
    return LiveKitEvent(
        _EVENT_NAME.string_of(event.get(_EVENT_JSON)),
        _ID.string_of(event.get(_ID_JSON)),
        _CREATED_AT.int64_of(event.get(_CREATED_AT_JSON)),
        _ROOM_NAME.string_of(room.get(_ROOM_NAME_JSON)),
        _ROOM_SID.string_of(room.get(_ROOM_SID_JSON)),
        _CREATION_TIME.int64_of(room.get(_CREATION_TIME_JSON)),
        _CREATION_TIME_MS.int64_of(room.get(_CREATION_TIME_MS_JSON)),
        _NO_PARTICIPANT
        if not participant
        else Participant(
            _IDENTITY.string_of(participant.get(_IDENTITY_JSON)),
            _KIND.enum_of(participant.get(_KIND_JSON)),
            _JOINED_AT.int64_of(participant.get(_JOINED_AT_JSON)),
            _JOINED_AT_MS.int64_of(participant.get(_JOINED_AT_MS_JSON)),
            _DISCONNECT_REASON.enum_of(participant.get(_DISCONNECT_REASON_JSON)),
        ),
    )


def _read_event_any_names(event: Mapping[str, Any]) -> LiveKitEvent:
    """:func:`read_event` for an object that may name fields by their proto names too."""
    room, participant = _ROOM.message(event), _PARTICIPANT.message(event)
    return LiveKitEvent(
        _EVENT_NAME.string(event),
        _ID.string(event),
        _CREATED_AT.int64(event),
        _ROOM_NAME.string(room),
        _ROOM_SID.string(room),
        _CREATION_TIME.int64(room),
        _CREATION_TIME_MS.int64(room),
        _NO_PARTICIPANT
        if not participant
        else Participant(
            _IDENTITY.string(participant),
            _KIND.enum(participant),
            _JOINED_AT.int64(participant),
            _JOINED_AT_MS.int64(participant),
            _DISCONNECT_REASON.enum(participant),
        ),
    )


def _segment(segment: bytes) -> bytes | None:
    """A base64url segment decoded as PyJWT accepts it (alphabet only, unpadded, canonical), else None."""
    tail = len(segment) % 4
    if tail == 1 or not _SEGMENT.fullmatch(segment) or (tail and segment[-1] not in _CANONICAL_LAST[tail]):
        return None
    return binascii.a2b_base64(segment.translate(_TO_STANDARD) + _PADDING[tail])


# LiveKit's JWS header is 36 bytes encoded; a longer segment is checked, never cached, so the cache (keyed by
# what callers send) holds at most 64 short keys.
MAX_CACHED_HEADER = 256


def _header_accepted(segment: bytes) -> bool:
    """A JWS header the fast path takes: HS256, nothing PyJWT would act on. Headers repeat, so cached."""
    return _cached_header_accepted(segment) if len(segment) <= MAX_CACHED_HEADER else _header_ok(segment)


def _header_ok(segment: bytes) -> bool:
    data = _segment(segment)
    return data is not None and _object(data) in _HEADERS


_cached_header_accepted = functools.lru_cache(maxsize=64)(_header_ok)


def _object(data: bytes) -> dict[str, Any] | None:
    try:
        value = orjson.loads(data)  # stricter than the json module: what it accepts, json reads alike
    except orjson.JSONDecodeError:
        return None
    return value if type(value) is dict else None


class FastWebhookVerifier(WebhookVerifier):
    """:class:`WebhookVerifier` with a fast path in front: a delivery it accepts and can read is answered
    here, any other goes to ``WebhookReceiver`` (the plain verifier), whose verdict stands."""

    def __init__(self, api_key: str, api_secret: str, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(api_key, api_secret)
        self._issuer = api_key
        self._leeway = DEFAULT_LEEWAY.total_seconds()
        self._clock = clock
        self._mac: hmac.HMAC | None = None
        try:  # PyJWT refuses secrets shaped like asymmetric keys; then so does WebhookReceiver, every time
            key = HMACAlgorithm(HMACAlgorithm.SHA256).prepare_key(api_secret.encode())
        except InvalidKeyError:
            pass
        else:
            self._mac = hmac.new(key, digestmod=hashlib.sha256) if api_key and api_secret else None
        self.fast = 0  # deliveries the fast path accepted
        self.deferred = 0  # deliveries handed to WebhookReceiver

    def verify(self, body: bytes, authorization: str | None) -> Delivery:
        event = self._fast_event(body, authorization) if authorization else None
        if event is not None:
            try:
                delivery = Delivery(read_event(event), body.decode())
            except (NotCanonicalError, UnicodeDecodeError):
                pass
            else:
                self.fast += 1
                return delivery
        self.deferred += 1
        return super().verify(body, authorization)

    def _fast_event(self, body: bytes, authorization: str) -> dict[str, Any] | None:
        """The body's event if the delivery is valid by the fast path's checks, else None (undecided)."""
        if self._mac is None or not authorization.isascii():
            return None
        token = authorization.encode()
        if token.count(b".") != 2:
            return None
        signing_input, _, signature_segment = token.rpartition(b".")
        header_segment, _, payload_segment = signing_input.partition(b".")
        if not _header_accepted(header_segment):
            return None
        mac = self._mac.copy()
        mac.update(signing_input)
        # The segment PyJWT decodes to the right signature is exactly its canonical encoding.
        if not hmac.compare_digest(base64url(mac.digest()), signature_segment):
            return None
        payload_data = _segment(payload_segment)
        claims = None if payload_data is None else _object(payload_data)
        if claims is None or not self._claims_valid(claims):
            return None
        try:
            claimed = base64.b64decode(claims["sha256"])  # as WebhookReceiver decodes it
        except (binascii.Error, ValueError):
            return None
        if hashlib.sha256(body).digest() != claimed:
            return None
        event = _object(body)
        # A repeated key (or a document nested deeper than any event): protobuf's parser decides (it refuses).
        return event if event is not None and keys_unique(body, event) else None

    def _claims_valid(self, claims: dict[str, Any]) -> bool:
        """PyJWT's checks as TokenVerifier asks for them, and what TokenVerifier needs to build its Claims."""
        now = self._clock()
        exp = claims.get("exp")
        if type(exp) is not int or exp <= now - self._leeway:
            return False
        latest = now + self._leeway
        nbf, iat = claims.get("nbf", 0), claims.get("iat", 0)
        if type(nbf) is not int or nbf > latest or type(iat) is not int or iat > latest:
            return False
        if claims.get("iss") != self._issuer or "aud" in claims or claims.get("roomConfig"):
            return False
        if type(claims.get("sub", "")) is not str or type(claims.get("jti", "")) is not str:
            return False
        # LiveKit's webhook tokens carry no grants: the grant claims are checked only when there are some.
        if not _GRANT_CLAIMS.isdisjoint(claims) and not _grants_valid(claims):
            return False
        sha256 = claims.get("sha256")
        return type(sha256) is str and bool(sha256)


def _grants_valid(claims: dict[str, Any]) -> bool:
    if any(type(claims.get(name, {})) is not dict for name in _GRANT_OBJECTS):
        return False
    return all(type(claims.get(name, {})) in (dict, type(None)) for name in _NULLABLE_GRANT_OBJECTS)
