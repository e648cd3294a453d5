"""The fast path checks the grant claims only when a token has one (LiveKit's webhook tokens have none):
with any grant claim, in any form, its verdict is still livekit-api's."""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any

import jwt
import pytest

from lkps.auth.webhooks import WebhookVerifier
from lkps.domain.events import stored_event
from lkps.errors import ApiError
from lkps.speedups.webhooks import FastWebhookVerifier

KEY, SECRET = "APIclaims", "claims-webhook-secret-" + "c" * 40
BODY = '{"event": "room_started", "id": "EV_claims", "room": {"name": "r", "sid": "RM_1"}}'
GRANTS = ("video", "sip", "inference", "observability", "agent", "agentEndpoint", "agentThread")
VALUES: list[Any] = [{}, {"roomJoin": True}, None, 0, [], "x", True]


def token(**extra: Any) -> str:
    now = int(time.time())
    digest = base64.b64encode(hashlib.sha256(BODY.encode()).digest()).decode()
    claims = {"sha256": digest, "sub": "", "iss": KEY, "nbf": now - 5, "exp": now + 300, **extra}
    return jwt.encode(claims, SECRET, algorithm="HS256")


def verdict(verifier: WebhookVerifier, authorization: str) -> Any:
    try:
        return stored_event(verifier.verify(BODY.encode(), authorization))
    except ApiError as exc:
        return exc.status


@pytest.mark.parametrize("value", VALUES, ids=repr)
@pytest.mark.parametrize("grant", GRANTS)
def test_a_grant_claim_gets_livekit_apis_verdict(grant: str, value: Any) -> None:
    authorization = token(**{grant: value})
    fast = FastWebhookVerifier(KEY, SECRET)
    assert verdict(fast, authorization) == verdict(WebhookVerifier(KEY, SECRET), authorization)


def test_without_grants_the_fast_path_answers() -> None:
    fast = FastWebhookVerifier(KEY, SECRET)
    assert verdict(fast, token()) == verdict(WebhookVerifier(KEY, SECRET), token())
    assert fast.fast == 1


@pytest.mark.parametrize(
    "claims",
    [{"iat": int(time.time()) + 3600}, {"iat": "1"}, {"nbf": 1.5}, {"jti": 5}, {"jti": "j"}, {"sub": None}],
    ids=repr,
)
def test_the_other_claims_get_livekit_apis_verdict(claims: dict[str, Any]) -> None:
    authorization = token(**claims)
    fast = FastWebhookVerifier(KEY, SECRET)
    assert verdict(fast, authorization) == verdict(WebhookVerifier(KEY, SECRET), authorization)
