"""Webhook bodies as an attacker (or LiveKit itself) shapes them: the speedup's fast path and livekit-api's
``WebhookReceiver`` give the same verdict and the same event for random and mutated signed events, duplicate
keys included; genuine events over 64 KiB are accepted on both paths."""

from __future__ import annotations

import base64
import hashlib
import json
import random
from typing import Any

import pytest
from google.protobuf import json_format
from hypothesis import given, settings
from hypothesis import strategies as st
from livekit import api
from livekit.protocol.models import DisconnectReason, ParticipantInfo, Room
from livekit.protocol.webhook import WebhookEvent

from lkps.auth.webhooks import WebhookVerifier
from lkps.domain.events import Delivery, LiveKitEvent, StoredEvent, stored_event
from lkps.errors import ApiError
from lkps.settings import Settings
from lkps.speedups.webhooks import FastWebhookVerifier
from tests.support.service import assert_fast_webhooks, fetch_rows, running_app, sign_webhook

KEY, SECRET = "APIadversarial", "adversarial-webhook-secret-" + "w" * 40
AGENT_ID = "0b9a3c1e-1111-2222-3333-444455556666"
INT64 = st.integers(-(2**63), 2**63 - 1)


def body_hash(body: str) -> str:
    return base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()


def signed(body: str) -> str:
    return api.AccessToken(KEY, SECRET).with_sha256(body_hash(body)).to_jwt()


def reference(body: str, token: str) -> StoredEvent | None:
    """livekit-api's verdict and event: the stored event, or None if refused."""
    try:
        event = api.WebhookReceiver(api.TokenVerifier(KEY, SECRET)).receive(body, token)
    except Exception:
        return None
    return stored_event(Delivery(LiveKitEvent.from_message(event), body))


def verdicts(body: str, token: str) -> tuple[StoredEvent | None, StoredEvent | None, StoredEvent | None]:
    """(livekit-api's, the plain verifier's, the fast verifier's) stored event, None where refused."""

    def through(verifier: WebhookVerifier) -> StoredEvent | None:
        try:
            return stored_event(verifier.verify(body.encode(), token))
        except ApiError as exc:
            refusal = exc
        assert refusal.status == 401
        return None

    return (
        reference(body, token),
        through(WebhookVerifier(KEY, SECRET)),
        through(FastWebhookVerifier(KEY, SECRET)),
    )


# -- random events, as LiveKit's protobuf JSON renders them -------------------------------------------------

_TEXT = st.text(max_size=12)
_ROOMS = st.builds(
    Room,
    sid=_TEXT,
    name=_TEXT,
    creation_time=INT64,
    creation_time_ms=INT64,
    metadata=st.text(max_size=40),
    num_participants=st.integers(0, 2**32 - 1),
)
_PARTICIPANTS = st.builds(
    ParticipantInfo,
    sid=_TEXT,
    identity=_TEXT,
    kind=st.sampled_from(list(ParticipantInfo.Kind.values())) | st.integers(0, 100),
    joined_at=INT64,
    joined_at_ms=INT64,
    disconnect_reason=st.sampled_from(list(DisconnectReason.values())),
    metadata=st.text(max_size=40),
    attributes=st.dictionaries(_TEXT, _TEXT, max_size=3),
)


@st.composite
def events(draw: st.DrawFn) -> WebhookEvent:
    event = WebhookEvent(
        event=draw(
            st.sampled_from(["room_started", "room_finished", "participant_joined", "participant_left"])
        ),
        id=draw(_TEXT),
        created_at=draw(INT64),
    )
    if draw(st.booleans()):
        event.room.CopyFrom(draw(_ROOMS))
    if draw(st.booleans()):
        event.participant.CopyFrom(draw(_PARTICIPANTS))
    return event


def rendered(event: WebhookEvent, proto_names: bool, indent: int | None) -> str:
    return json_format.MessageToJson(event, indent=indent, preserving_proto_field_name=proto_names)


@settings(max_examples=150, deadline=None)
@given(event=events(), proto_names=st.booleans(), indent=st.sampled_from([None, 0, 2]))
def test_any_signed_event_gets_livekit_apis_verdict_and_event_on_both_paths(
    event: WebhookEvent, proto_names: bool, indent: int | None
) -> None:
    body = rendered(event, proto_names, indent)
    expected, plain, fast = verdicts(body, signed(body))
    assert expected is not None
    assert plain == fast == expected


# -- mutations of a signed event's JSON (signed after the mutation: authentic, but shaped by an attacker) ----


def _objects(value: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            found.append(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def with_duplicate(document: dict[str, Any], rng: random.Random, replacement: Any) -> str:
    """``document``'s JSON with one key of one of its objects repeated (the copy holding ``replacement``)."""
    objects = [o for o in _objects(document) if o]
    target = rng.choice(objects)
    key = rng.choice(list(target))
    marker = "__duplicate_marker__"
    target[marker] = replacement
    text = json.dumps(document)
    # The marker's own key becomes the duplicated key (escaped as json.dumps escapes it).
    return text.replace(json.dumps(marker), json.dumps(key), 1)


_REPLACEMENTS = st.one_of(
    st.none(),
    st.booleans(),
    INT64,
    st.text(max_size=6),
    st.just({}),
    st.just([]),
    st.just("participant_left"),
)


@settings(max_examples=150, deadline=None)
@given(event=events(), seed=st.integers(0, 2**32), replacement=_REPLACEMENTS, proto_names=st.booleans())
def test_a_repeated_key_anywhere_gets_livekit_apis_verdict_on_both_paths(
    event: WebhookEvent, seed: int, replacement: Any, proto_names: bool
) -> None:
    document = json.loads(rendered(event, proto_names, None))
    rng = random.Random(seed)  # noqa: S311 - picks a key to repeat, nothing secret
    body = with_duplicate(document, rng, replacement)
    expected, plain, fast = verdicts(body, signed(body))
    assert expected is None  # protobuf's parser refuses a repeated key
    assert plain is None
    assert fast is None


@pytest.mark.parametrize(
    "body",
    [
        '{"event": "room_started", "event": "room_finished", "id": "EV_1"}',
        '{"event": "room_started", "id": "EV_1", "room": {"name": "a", "name": "b"}}',
        '{"event": "room_started", "id": "EV_1", "\\u0069d": "EV_2"}',  # the same key, escaped
        '{"event": "room_started", "id": "E", "room": {"metadata": "{\\"a\\": 1}", "sid": "x", "sid": ""}}',
        '{"event": "room_started", "id": "EV_1", "x": {"k": 1, "k": 2}}',  # in a field nobody reads
    ],
    ids=["top-level", "nested", "escaped", "colon-in-string", "unknown-field"],
)
def test_duplicate_keys_are_refused_on_every_path(body: str) -> None:
    expected, plain, fast = verdicts(body, signed(body))
    assert (expected, plain, fast) == (None, None, None)


_JSON = st.recursive(
    st.none() | st.booleans() | INT64 | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(
    event=events(),
    extra=st.dictionaries(st.text(min_size=1, max_size=8), _JSON, max_size=3),
    depth=st.integers(0, 3),
)
def test_unknown_fields_and_deep_nesting_get_livekit_apis_verdict_on_both_paths(
    event: WebhookEvent, extra: dict[str, Any], depth: int
) -> None:
    document = json.loads(rendered(event, False, None))
    known = {f.json_name for f in WebhookEvent.DESCRIPTOR.fields} | {
        f.name for f in WebhookEvent.DESCRIPTOR.fields
    }
    document.update({k: v for k, v in extra.items() if k not in known})
    levels = [0, 10, 200, 2000][depth]
    nested = "[" * levels + '"leaf"' + "]" * levels
    body = json.dumps(document)[:-1] + f', "zzUnknownNested": {nested}}}'
    expected, plain, fast = verdicts(body, signed(body))
    assert plain == fast == expected


# -- size: what LiveKit can send ---------------------------------------------------------------------------


def big_event(metadata_bytes: int) -> WebhookEvent:
    room = Room(sid="RM_big", name=f"JDOE1-{AGENT_ID}-1800000000-{'0' * 32}", creation_time=1_800_000_000)
    room.metadata = "m" * metadata_bytes
    event = WebhookEvent(event="room_finished", id="EV_big_room", created_at=1_800_000_100, room=room)
    event.participant.CopyFrom(
        ParticipantInfo(identity="jane", metadata="p" * metadata_bytes, attributes={"a": "v" * 60_000})
    )
    return event


async def test_a_genuine_event_over_64_kib_is_stored(settings: Settings) -> None:
    # Room and participant metadata at LiveKit's default limit (64,000 bytes each) and an attribute: ~190 KB.
    event = big_event(64_000)
    async with running_app(settings) as app:
        response = await app.webhook(event)
        assert_fast_webhooks(app.services, at_least=1)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "processed"
    rows = await fetch_rows(settings.database_url, "SELECT id FROM webhook_events WHERE id = 'EV_big_room'")
    assert [row["id"] for row in rows] == ["EV_big_room"]


async def test_a_body_over_the_documented_limit_is_413(settings: Settings) -> None:
    body, auth = sign_webhook(big_event(600_000))
    assert len(body) > 1024 * 1024
    async with running_app(settings) as app:
        response = await app.client.post("/livekit/webhook", content=body, headers={"Authorization": auth})
    assert response.status_code == 413
    assert response.json()["field"] == "body"
