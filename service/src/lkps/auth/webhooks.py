"""LiveKit webhook deliveries verified by livekit-api's ``WebhookReceiver``: the raw JWT in ``Authorization``,
signed with the API secret, whose ``sha256`` claim is the body's hash."""

from __future__ import annotations

from livekit import api
from livekit.api.access_token import DEFAULT_LEEWAY

from ..domain.events import Delivery, LiveKitEvent
from ..errors import ApiError


class WebhookVerifier:
    def __init__(self, api_key: str, api_secret: str) -> None:
        self._receiver = api.WebhookReceiver(api.TokenVerifier(api_key, api_secret, leeway=DEFAULT_LEEWAY))

    def verify(self, body: bytes, authorization: str | None) -> Delivery:
        """The delivery's event and body; a 401 if it is not signed with the API secret or the body is not
        the one signed."""
        if not authorization:
            raise ApiError(
                401,
                "unauthorized",
                "no Authorization header: LiveKit signs every webhook",
                "Authorization",
                reason="webhook_unsigned",
            )
        try:
            text = body.decode()
        except UnicodeDecodeError:
            raise refused() from None
        try:
            message = self._receiver.receive(text, authorization)
        except Exception:  # livekit-api raises bare Exceptions for hash mismatches: any failure is a 401
            raise refused() from None
        return Delivery(LiveKitEvent.from_message(message), text)


def refused() -> ApiError:
    return ApiError(
        401,
        "unauthorized",
        "the webhook signature or body hash does not verify: LIVEKIT_API_KEY/SECRET must match the LiveKit"
        " server's",
        "Authorization",
        reason="webhook_signature",
    )
