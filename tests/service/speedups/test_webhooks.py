"""Speedup ``webhooks`` (the fast path) is held to livekit-api's ``WebhookReceiver`` (the plain path): the
same verdict on every delivery (valid, tampered, expired, oddly shaped), and the same stored event and session
facts for every accepted one."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from livekit import api
from livekit.protocol.models import DisconnectReason, ParticipantInfo, Room
from livekit.protocol.webhook import WebhookEvent

from lkps.domain.events import Delivery, LiveKitEvent, StoredEvent, stored_event
from lkps.errors import ApiError
from lkps.speedups.webhooks import FastWebhookVerifier

KEY, SECRET = "APIwebhooks", "webhook-secret-" + "w" * 40
AGENT_ID = "0b9a3c1e-1111-2222-3333-444455556666"
T0 = 1_800_000_000
ROOM = f"JDOE1-{AGENT_ID}-{T0}-ab12"
ABSENT = object()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def body_hash(body: str) -> str:
    return base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()


def signed_segments(header: str, payload: str, *, secret: str = SECRET) -> str:
    signing_input = f"{header}.{payload}"
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def compact(header: Any, claims: Any, *, secret: str = SECRET) -> str:
    """A JWS over the JSON of ``header`` and ``claims`` (or their raw text), signed HS256 with ``secret``."""
    segments = [
        b64url(value.encode() if isinstance(value, str) else json.dumps(value).encode())
        for value in (header, claims)
    ]
    return signed_segments(*segments, secret=secret)


def non_canonical(segment: str) -> str:
    """``segment`` with its last character's unused bits set: it decodes to the same bytes, and PyJWT
    refuses it (a token has one encoding)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    assert len(segment) % 4 in (2, 3)
    return segment[:-1] + alphabet[alphabet.index(segment[-1]) + 1]


def claims_for(body: str, **changes: Any) -> dict[str, Any]:
    """livekit-api's webhook claims for ``body``, with ``changes`` (``ABSENT`` removes a claim)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sha256": body_hash(body),
        "sub": "",
        "iss": KEY,
        "nbf": now - 5,
        "exp": now + 300,
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not ABSENT}


HS256 = {"alg": "HS256", "typ": "JWT"}


def participant_event(kind: str = "participant_joined", **fields: Any) -> WebhookEvent:
    event = WebhookEvent(
        event=kind,
        id="EV_fastpath1",
        created_at=T0 + 2,
        room=Room(
            sid="RM_1", name=f"JDOE1-{AGENT_ID}-{T0}-ab12", creation_time=T0, creation_time_ms=T0 * 1000
        ),
    )
    event.participant.CopyFrom(
        ParticipantInfo(
            sid="PA_1",
            identity=fields.pop("identity", "agent-AJ_1"),
            kind=fields.pop("participant_kind", ParticipantInfo.Kind.AGENT),
            joined_at=T0 + 2,
            joined_at_ms=(T0 + 2) * 1000 + 250,
            **fields,
        )
    )
    return event


def livekit_body(event: WebhookEvent, **options: Any) -> str:
    return json_format.MessageToJson(event, indent=None, **options)


def signed(body: str) -> str:
    """What LiveKit sends: livekit-api's own AccessToken with the body's hash."""
    return api.AccessToken(KEY, SECRET).with_sha256(body_hash(body)).to_jwt()


def reference(body: str, token: str) -> StoredEvent | None:
    """livekit-api's verdict and event, read by the service: the stored event, or None if refused."""
    try:
        event = api.WebhookReceiver(api.TokenVerifier(KEY, SECRET)).receive(body, token)
    except Exception:
        return None
    return stored_event(Delivery(LiveKitEvent.from_message(event), body))


def ours(verifier: FastWebhookVerifier, body: str, token: str) -> tuple[StoredEvent | None, bool]:
    """The service's verdict and event, and whether the fast path decided it."""
    fast = verifier.fast
    try:
        item = stored_event(verifier.verify(body.encode(), token))
    except ApiError as exc:
        refused = exc
    else:
        return item, verifier.fast > fast
    assert refused.status == 401
    assert SECRET not in refused.detail
    assert token not in refused.detail
    return None, False


def assert_agrees(body: str, token: str) -> bool:
    """Same verdict and event as livekit-api (so the fast path never accepts what it refuses); whether the
    fast path decided."""
    verifier = FastWebhookVerifier(KEY, SECRET)
    expected = reference(body, token)
    got, fast = ours(verifier, body, token)
    assert got == expected
    return fast


BODY = livekit_body(participant_event())


def test_a_delivery_as_livekit_sends_it_takes_the_fast_path_with_livekit_apis_result() -> None:
    assert assert_agrees(BODY, signed(BODY))
    item = reference(BODY, signed(BODY))
    assert item is not None
    assert item.facts is not None
    assert item.facts.agent_identity == "agent-AJ_1"
    assert item.facts.agent_entra_app_id == AGENT_ID


def test_every_event_kind_and_participant_kind_reads_as_protobuf_reads_it() -> None:
    events = [
        participant_event(kind, participant_kind=participant_kind, disconnect_reason=reason)
        for kind in ("participant_joined", "participant_left", "track_published")
        for participant_kind in ParticipantInfo.Kind.values()
        for reason in (DisconnectReason.UNKNOWN_REASON, DisconnectReason.CLIENT_INITIATED, 999)
    ]
    for kind in ("room_started", "room_finished"):
        event = participant_event(kind)
        event.ClearField("participant")
        events.append(event)
    for event in events:
        body = livekit_body(event)
        assert assert_agrees(body, signed(body)), body


@pytest.mark.parametrize(
    "options",
    [
        {"preserving_proto_field_name": True},  # snake_case names, which protobuf's parser accepts too
        {"use_integers_for_enums": True},
        {"always_print_fields_with_no_presence": True},  # defaults written out
    ],
)
def test_json_spellings_protobuf_accepts_read_alike(options: dict[str, Any]) -> None:
    body = livekit_body(
        participant_event("participant_left", disconnect_reason=DisconnectReason.SERVER_SHUTDOWN), **options
    )
    assert assert_agrees(body, signed(body))


# 1800000002 in fullwidth digits: int() reads it (so does protobuf); the fast reader leaves it to protobuf
FULLWIDTH_TIME = "".join(chr(0xFF10 + int(digit)) for digit in "1800000002")


def edited_body(edit: Any) -> str:
    document = json.loads(BODY)
    edit(document)
    return json.dumps(document)


@pytest.mark.parametrize(
    ("name", "edit", "fast"),
    [
        ("int64 as numbers", lambda d: d.update(createdAt=T0 + 2) or d["room"].update(creationTime=T0), True),
        ("unknown fields", lambda d: d.update(future={"x": [1]}) or d["room"].update(newField="y"), True),
        ("null room", lambda d: d.update(room=None), True),
        ("null field", lambda d: d["participant"].update(identity=None), True),
        ("both names for a field", lambda d: d.update(created_at="5"), False),
        ("unknown enum name", lambda d: d["participant"].update(kind="ROBOT"), False),
        ("enum as a digit string", lambda d: d["participant"].update(kind="4"), False),
        ("float time", lambda d: d.update(createdAt=1800000002.0), False),
        ("fractional time", lambda d: d.update(createdAt=1.5), False),
        ("boolean time", lambda d: d.update(createdAt=True), False),
        ("time beyond int64", lambda d: d.update(createdAt=str(2**63)), False),
        ("number as a name", lambda d: d["room"].update(name=5), False),
        ("list as a message", lambda d: d.update(participant=[1]), False),
        ("huge time", lambda d: d.update(createdAt=str(2**62)), True),
        ("negative time as digits", lambda d: d.update(createdAt="-5"), True),
        ("time with a plus sign", lambda d: d.update(createdAt="+1800000002"), False),
        ("time in other digits", lambda d: d.update(createdAt=FULLWIDTH_TIME), False),
        ("time with a space", lambda d: d.update(createdAt=" 1800000002"), False),
        ("a lone minus", lambda d: d["room"].update(creationTime="-"), False),
    ],
)
def test_json_forms_the_fast_reader_does_not_take_go_to_protobuf(name: str, edit: Any, fast: bool) -> None:
    body = edited_body(edit)
    assert assert_agrees(body, signed(body)) is fast, name


@pytest.mark.parametrize(
    ("name", "token", "body"),
    [
        ("tampered body", signed(BODY), BODY.replace("agent-AJ_1", "agent-AJ_2")),
        ("another secret", compact(HS256, claims_for(BODY), secret="other-secret-" + "o" * 40), BODY),
        ("expired", compact(HS256, claims_for(BODY, exp=int(time.time()) - 3600)), BODY),
        ("expired within the leeway", compact(HS256, claims_for(BODY, exp=int(time.time()) - 5)), BODY),
        ("not yet valid", compact(HS256, claims_for(BODY, nbf=int(time.time()) + 3600)), BODY),
        ("issued in the future", compact(HS256, claims_for(BODY, iat=int(time.time()) + 3600)), BODY),
        ("no exp", compact(HS256, claims_for(BODY, exp=ABSENT)), BODY),
        ("exp as digits", compact(HS256, claims_for(BODY, exp=str(int(time.time()) + 60))), BODY),
        ("exp as a float", compact(HS256, claims_for(BODY, exp=time.time() + 60)), BODY),
        ("another issuer", compact(HS256, claims_for(BODY, iss="APIother")), BODY),
        ("no issuer", compact(HS256, claims_for(BODY, iss=ABSENT)), BODY),
        ("an audience", compact(HS256, claims_for(BODY, aud="lkps")), BODY),
        ("no sha256", compact(HS256, claims_for(BODY, sha256=ABSENT)), BODY),
        ("empty sha256", compact(HS256, claims_for(BODY, sha256="")), BODY),
        ("sha256 not base64", compact(HS256, claims_for(BODY, sha256="*not base64*")), BODY),
        (
            "sha256 hex",
            compact(HS256, claims_for(BODY, sha256=hashlib.sha256(BODY.encode()).hexdigest())),
            BODY,
        ),
        ("subject not a string", compact(HS256, claims_for(BODY, sub=5)), BODY),
        ("grants not an object", compact(HS256, claims_for(BODY, video=None)), BODY),
        ("agent grants a number", compact(HS256, claims_for(BODY, agent=0)), BODY),
        ("agent grants null", compact(HS256, claims_for(BODY, agent=None)), BODY),
        ("a room config", compact(HS256, claims_for(BODY, roomConfig={"maxParticipants": 2})), BODY),
        ("grants and names", compact(HS256, claims_for(BODY, video={"roomJoin": True}, name="x")), BODY),
        ("alg none", compact({"alg": "none"}, claims_for(BODY)), BODY),
        ("alg HS512", compact({"alg": "HS512", "typ": "JWT"}, claims_for(BODY)), BODY),
        ("header without typ", compact({"alg": "HS256"}, claims_for(BODY)), BODY),
        ("header with a kid", compact({"alg": "HS256", "kid": "k1"}, claims_for(BODY)), BODY),
        ("header spaced", compact('{ "alg" : "HS256" }', claims_for(BODY)), BODY),
        ("claims not an object", compact(HS256, "[1, 2]"), BODY),
        ("claims not JSON", compact(HS256, "{nope"), BODY),
        ("padded signature", signed(BODY) + "=", BODY),
        ("four segments", signed(BODY) + ".x", BODY),
        ("bearer prefix", "Bearer " + signed(BODY), BODY),
        ("body not JSON", compact(HS256, claims_for("nope")), "nope"),
        ("body a list", compact(HS256, claims_for("[]")), "[]"),
    ],
)
def test_each_check_gives_webhook_receivers_verdict(name: str, token: str, body: str) -> None:
    assert_agrees(body, token)


def test_a_segment_in_a_second_encoding_gets_webhook_receivers_verdict() -> None:
    header = b64url(json.dumps(HS256).encode())
    tokens = []
    for pad in range(4):
        payload = b64url(json.dumps(claims_for(BODY, pad="p" * pad)).encode())
        if len(payload) % 4:
            tokens.append(signed_segments(header, non_canonical(payload)))
    spaced = b64url(b'{"alg": "HS256"}')  # 22 characters: room for unused bits
    tokens.append(signed_segments(non_canonical(spaced), b64url(json.dumps(claims_for(BODY)).encode())))
    assert len(tokens) >= 3
    for token in tokens:
        assert reference(BODY, token) is None  # PyJWT takes one encoding only
        assert_agrees(BODY, token)


def test_a_refused_delivery_is_401_without_the_token_in_the_error() -> None:
    verifier = FastWebhookVerifier(KEY, SECRET)
    token = compact(HS256, claims_for(BODY), secret="other-secret-" + "o" * 40)
    with pytest.raises(ApiError) as caught:
        verifier.verify(BODY.encode(), token)
    assert caught.value.status == 401
    assert caught.value.field == "Authorization"
    assert (verifier.fast, verifier.deferred) == (0, 1)
    with pytest.raises(ApiError):
        verifier.verify(b"\xff\xfe", signed(BODY))


def test_a_secret_pyjwt_refuses_refuses_every_delivery_on_both_paths() -> None:
    pem = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----"
    verifier = FastWebhookVerifier(KEY, pem)
    token = api.AccessToken(KEY, "x" * 40).with_sha256(body_hash(BODY)).to_jwt()
    forged = compact(HS256, claims_for(BODY), secret=pem)
    for candidate in (token, forged):
        with pytest.raises(ApiError):
            verifier.verify(BODY.encode(), candidate)
    assert verifier.fast == 0


def test_a_token_that_expires_between_deliveries_is_refused_by_the_clock() -> None:
    now = [time.time()]
    verifier = FastWebhookVerifier(KEY, SECRET, clock=lambda: now[0])
    token = compact(HS256, claims_for(BODY, exp=int(now[0]) + 10))
    assert verifier.verify(BODY.encode(), token).event.id == "EV_fastpath1"
    now[0] += 10 + 61  # past exp and livekit-api's one-minute leeway: the fast path declines
    assert verifier._fast_event(BODY.encode(), token) is None


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
NOW = int(time.time())
CLAIM_VALUES = {
    "exp": st.sampled_from([NOW + 600, NOW - 30, NOW - 3600, str(NOW + 600), None, True]) | JSON_VALUES,
    "nbf": st.sampled_from([NOW - 5, NOW + 30, NOW + 3600, None, 1.5]) | JSON_VALUES,
    "iat": st.sampled_from([NOW, NOW + 30, NOW + 3600, "x"]) | JSON_VALUES,
    "iss": st.sampled_from([KEY, KEY.lower(), "", None]) | JSON_VALUES,
    "sub": JSON_VALUES,
    "jti": JSON_VALUES,
    "aud": JSON_VALUES,
    "sha256": st.sampled_from([body_hash(BODY), body_hash(BODY).rstrip("="), ""]) | JSON_VALUES,
    "video": JSON_VALUES,
    "sip": JSON_VALUES,
    "agent": JSON_VALUES,
    "roomConfig": JSON_VALUES,
    "roomPreset": JSON_VALUES,
    "attributes": JSON_VALUES,
    "other": JSON_VALUES,
}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    header=st.fixed_dictionaries(
        {},
        optional={
            "alg": st.sampled_from(["HS256", "HS384", "none", ""]),
            "typ": st.sampled_from(["JWT", "jwt"]),
            "kid": JSON_VALUES,
            "crit": JSON_VALUES,
            "b64": st.booleans(),
        },
    ),
    changes=st.fixed_dictionaries({}, optional=CLAIM_VALUES),
    removed=st.sets(st.sampled_from(["exp", "iss", "sha256", "nbf"])),
)
def test_any_signed_claims_get_webhook_receivers_verdict(
    header: dict[str, Any], changes: dict[str, Any], removed: set[str]
) -> None:
    claims = claims_for(BODY, **changes, **dict.fromkeys(removed - changes.keys(), ABSENT))
    assert_agrees(BODY, compact(header, claims))


@settings(max_examples=200, deadline=None)
@given(position=st.integers(0, 10_000), character=st.sampled_from("A_-+/=.!a0 \x00é"), insert=st.booleans())
def test_any_edit_of_a_valid_token_gets_webhook_receivers_verdict(
    position: int, character: str, insert: bool
) -> None:
    token = signed(BODY)
    at = position % len(token)
    edited = token[:at] + character + token[at + (not insert) :]
    assert_agrees(BODY, edited)
