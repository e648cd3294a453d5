"""The fast webhook reader takes an event written with JSON names only by plain lookups, and any other
spelling (proto names, both names, anywhere in the event) by the per-field readers: each gives
livekit-api's event, and the forms only protobuf settles still go to it."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from google.protobuf import json_format
from livekit import api
from livekit.protocol.models import DisconnectReason, ParticipantInfo, Room
from livekit.protocol.webhook import WebhookEvent

from lkps.domain.events import Delivery, LiveKitEvent, stored_event
from lkps.speedups.webhooks import FastWebhookVerifier

KEY, SECRET = "APIspellings", "spellings-webhook-secret-" + "s" * 40
T0 = 1_800_000_000

EVENT = WebhookEvent(
    event="participant_left",
    id="EV_spellings",
    created_at=T0 + 60,
    room=Room(sid="RM_1", name="room", creation_time=T0, creation_time_ms=T0 * 1000),
    participant=ParticipantInfo(
        identity="jane",
        kind=ParticipantInfo.Kind.AGENT,
        joined_at=T0 + 1,
        joined_at_ms=(T0 + 1) * 1000,
        disconnect_reason=DisconnectReason.CLIENT_INITIATED,
    ),
)


def signed(body: str) -> str:
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    return api.AccessToken(KEY, SECRET).with_sha256(digest).to_jwt()


def document(proto_names: bool) -> dict[str, Any]:
    return dict(json.loads(json_format.MessageToJson(EVENT, preserving_proto_field_name=proto_names)))


def rename(obj: dict[str, Any], old: str, new: str) -> None:
    obj[new] = obj.pop(old)


EDITS = {
    "json names": lambda d: None,
    "proto names everywhere": lambda d: d.clear() or d.update(document(proto_names=True)),
    "proto name at the top": lambda d: rename(d, "createdAt", "created_at"),
    "proto name in the room": lambda d: rename(d["room"], "creationTimeMs", "creation_time_ms"),
    "proto name in the participant": lambda d: rename(
        d["participant"], "disconnectReason", "disconnect_reason"
    ),
    "both names at the top": lambda d: d.update(created_at=d["createdAt"]),
    "both names in the room": lambda d: d["room"].update(creation_time=d["room"]["creationTime"]),
    "both names in the participant": lambda d: d["participant"].update(joined_at="1"),
    "null room": lambda d: d.update(room=None),
    "room not an object": lambda d: d.update(room=[]),
    "participant not an object": lambda d: d.update(participant="x"),
    "18 digits": lambda d: d.update(createdAt="9" * 18),
    "19 digits in range": lambda d: d.update(createdAt=str(2**63 - 1)),
    "19 digits out of range": lambda d: d.update(createdAt=str(2**63)),
    "leading zeros": lambda d: d.update(createdAt="000000000000000000000007"),
    "empty digits": lambda d: d.update(createdAt=""),
    "lowest int64": lambda d: d["room"].update(creationTime=str(-(2**63))),
    "below int64": lambda d: d["room"].update(creationTime=str(-(2**63) - 1)),
    "enum by number": lambda d: d["participant"].update(kind=4),
    "enum out of range": lambda d: d["participant"].update(kind=2**31),
}


@pytest.mark.parametrize("edit", list(EDITS), ids=list(EDITS))
def test_every_spelling_reads_as_livekit_api_reads_it(edit: str) -> None:
    doc = document(proto_names=False)
    EDITS[edit](doc)
    body = json.dumps(doc)
    token = signed(body)
    try:
        event = api.WebhookReceiver(api.TokenVerifier(KEY, SECRET)).receive(body, token)
    except Exception:
        expected = None
    else:
        expected = stored_event(Delivery(LiveKitEvent.from_message(event), body))
    verifier = FastWebhookVerifier(KEY, SECRET)
    try:
        fast = stored_event(verifier.verify(body.encode(), token))
    except Exception:
        fast = None
    assert fast == expected
    if edit in ("json names", "proto names everywhere", "18 digits"):
        assert verifier.fast == 1  # LiveKit's own spelling: the fast path's
