"""Failed authentication is logged and counted (issue 24 item 11): each refusal counted in
``lkps_refusals_total``, its line rate-limited per reason, never holding the token or signature."""

from __future__ import annotations

import logging
import math
import secrets
import time
import uuid

import pytest
from livekit.protocol.models import Room
from livekit.protocol.webhook import WebhookEvent
from prometheus_client.parser import text_string_to_metric_families

from lkps.errors import ApiError
from lkps.observability.logs import JsonFormatter
from lkps.observability.metrics import Metrics
from lkps.observability.refusals import BURST, PER_SECOND, Refusals
from lkps.settings import Settings
from tests.support.service import running_app, sign_webhook

REFUSALS_LOGGER = "lkps.observability.refusals"


def refusal_counts(exposition: str) -> dict[tuple[str, str], float]:
    return {
        (sample.labels["route"], sample.labels["reason"]): sample.value
        for family in text_string_to_metric_families(exposition)
        if family.name == "lkps_refusals"
        for sample in family.samples
        if sample.name == "lkps_refusals_total"
    }


async def test_two_thousand_rejected_tokens_and_forged_webhooks_give_a_bounded_log_without_them(
    entra_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=REFUSALS_LOGGER)
    secrets_sent: list[str] = []
    started = time.monotonic()
    async with running_app(entra_settings) as app:
        for n in range(1000):
            token = f"forged.{secrets.token_urlsafe(24)}.{n}"
            secrets_sent.append(token)
            headers = {"Authorization": f"Bearer {token}"}
            assert (await app.client.post("/api/agent/register", headers=headers)).status_code == 401
        for _ in range(1000):
            event = WebhookEvent(event="room_started", id=f"EV_{uuid.uuid4().hex}", room=Room(name="r"))
            body, auth = sign_webhook(event, api_secret="forged-" + secrets.token_hex(20))
            secrets_sent.append(auth)
            response = await app.client.post(
                "/livekit/webhook", content=body, headers={"Authorization": auth}
            )
            assert response.status_code == 401
        elapsed = time.monotonic() - started
        exposition = (await app.client.get("/metrics")).text
    # the app has stopped: what was still suppressed has been reported

    records = [r for r in caplog.records if r.name == REFUSALS_LOGGER]
    lines = [JsonFormatter().format(r) for r in records]
    assert all(secret not in line for line in lines for secret in secrets_sent)
    assert all(getattr(r, "reason", None) in {"not_a_jwt", "webhook_signature"} for r in records)
    refused = [r for r in records if r.getMessage() == "request refused"]
    summaries = [r for r in records if r.getMessage().endswith("similar refusals suppressed")]
    # per reason: a burst, then at most one a second, each possibly preceded by its summary line
    per_reason = BURST + math.ceil(elapsed * PER_SECOND) + 1
    assert len(refused) <= 2 * per_reason
    assert len(summaries) <= 2 * per_reason
    for reason, route in (("not_a_jwt", "/api/agent/register"), ("webhook_signature", "/livekit/webhook")):
        logged = sum(1 for r in refused if r.reason == reason)  # type: ignore[attr-defined]
        suppressed = sum(r.suppressed for r in summaries if r.reason == reason)  # type: ignore[attr-defined]
        assert logged + suppressed == 1000, reason  # every refusal is a line or counted in one
        assert refusal_counts(exposition)[(route, reason)] == 1000
    assert sum(refusal_counts(exposition).values()) == 2000
    register_line = next(r for r in refused if r.reason == "not_a_jwt")  # type: ignore[attr-defined]
    assert register_line.levelno == logging.WARNING
    assert register_line.route == "/api/agent/register"  # type: ignore[attr-defined]
    assert register_line.status == 401  # type: ignore[attr-defined]


def test_a_reason_logs_a_burst_then_one_a_second_and_reports_what_it_suppressed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=REFUSALS_LOGGER)
    now = [1000.0]
    refusals = Refusals(Metrics(routes=["/api/agent/register"]), clock=lambda: now[0])
    expired = ApiError(401, "unauthorized", "expired", "Authorization", reason="token_expired")
    other = ApiError(400, "bad_request", "no client id", "client-id")
    for _ in range(BURST + 5):
        refusals("/api/agent/register", expired)
    refusals("/api/agent/register", other)  # another reason has its own bucket
    now[0] += 1.0
    refusals("/api/agent/register", expired)
    refusals("/api/agent/register", expired)
    refusals.flush()

    messages = [(r.getMessage(), getattr(r, "reason", None)) for r in caplog.records]
    assert messages == [
        *[("request refused", "token_expired")] * BURST,
        ("request refused", "bad_request"),
        ("5 similar refusals suppressed", "token_expired"),
        ("request refused", "token_expired"),
        ("1 similar refusals suppressed", "token_expired"),
    ]
    bad_request = next(r for r in caplog.records if getattr(r, "reason", None) == "bad_request")
    assert bad_request.levelno == logging.INFO
