"""The LiveKit stand-in, proven with a real livekit-agents worker, livekit-api tokens and WebhookReceiver."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
from aiohttp import web
from livekit import api
from livekit.protocol import agent
from livekit.protocol.agent_dispatch import RoomAgentDispatch
from livekit.protocol.room import RoomConfiguration

from livekit_platform_testing.livekit import LiveKitStandIn, RoomRequestError, WebhookDelivery
from livekit_platform_testing.server import StandInServer

API_KEY = "APIstandintests0123456789abcdef01"  # static pair for this file only
API_SECRET = "secret-for-the-livekit-standin-tests-0123456789abcdef"
AGENT_NAME = "plain-agent"
PLAIN_WORKER = Path(__file__).parent / "agents" / "plain_worker.py"
WORKER_START_TIMEOUT = 90.0


class WebhookSink(StandInServer):
    """Receives webhooks as they arrive on the wire; answers 500 to the next ``fail_next`` requests."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[tuple[str, dict[str, str]]] = []
        self.fail_next = 0

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/webhook", self._receive)
        return app

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.text()
        with self._lock:
            self.received.append((body, dict(request.headers)))
            if self.fail_next > 0:
                self.fail_next -= 1
                return web.Response(status=500, text="try again")
        return web.Response(text="ok")

    @property
    def webhook_url(self) -> str:
        return f"{self.url}/webhook"

    def events(self) -> list[str]:
        receiver = api.WebhookReceiver(api.TokenVerifier(API_KEY, API_SECRET))
        return [receiver.receive(body, headers["Authorization"]).event for body, headers in self.received]


def participant_token(
    identity: str, room: str, *, config: RoomConfiguration | None = None, secret: str = API_SECRET
) -> str:
    token = (
        api.AccessToken(API_KEY, secret)
        .with_identity(identity)
        .with_grants(api.VideoGrants(room_join=True, room=room))
    )
    if config is not None:
        token = token.with_room_config(config)
    return token.to_jwt()


def dispatching(metadata: str, agent_name: str = AGENT_NAME, **config: Any) -> RoomConfiguration:
    return RoomConfiguration(agents=[RoomAgentDispatch(agent_name=agent_name, metadata=metadata)], **config)


# -- a real livekit-agents worker, shared by the tests that need one ---------------------------------------


@dataclass
class WorkerRig:
    standin: LiveKitStandIn
    sink: WebhookSink
    process: subprocess.Popen[bytes]
    record_file: Path
    log_file: Path
    queued_job_id: str

    def recorded_jobs(self) -> dict[str, dict[str, Any]]:
        if not self.record_file.exists():
            return {}
        lines = self.record_file.read_text(encoding="utf-8").splitlines()
        return {rec["job_id"]: rec for rec in map(json.loads, lines)}

    def log_tail(self) -> str:
        return self.log_file.read_text(encoding="utf-8", errors="replace")[-4000:]


def _stop_process_group(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=20)
    # job processes live in the same group; leave nothing behind
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerRig]:
    tmp = tmp_path_factory.mktemp("plain-worker")
    with (
        WebhookSink() as sink,
        LiveKitStandIn(
            api_key=API_KEY,
            api_secret=API_SECRET,
            webhook_url=sink.webhook_url,
            departure_timeout=1.0,
            job_migration_grace=30.0,
        ) as standin,
    ):
        # dispatched before any worker exists: must wait for the worker, not fail
        queued = standin.join(participant_token("early-bird", "before-worker", config=dispatching("queued")))
        env = {
            **os.environ,
            "LIVEKIT_URL": standin.ws_url,
            "LIVEKIT_API_KEY": API_KEY,
            "LIVEKIT_API_SECRET": API_SECRET,
            "PLAIN_WORKER_AGENT_NAME": AGENT_NAME,
            "PLAIN_WORKER_RECORD_FILE": str(tmp / "jobs.jsonl"),
            "PLAIN_WORKER_HTTP_PORT": "0",
        }
        log_file = tmp / "worker.log"
        with log_file.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, str(PLAIN_WORKER), "start", "--log-level", "INFO"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        rig = WorkerRig(standin, sink, process, tmp / "jobs.jsonl", log_file, queued.job_ids[0])
        try:
            standin.wait_for_worker(AGENT_NAME, timeout=WORKER_START_TIMEOUT)
            yield rig
        except BaseException:
            print(f"worker log:\n{rig.log_tail()}")
            raise
        finally:
            _stop_process_group(process)


@pytest.fixture(autouse=True)
def worker_log_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    """Prints the worker's log after each test that uses it: pytest shows it only when the test failed."""
    yield
    if "rig" in request.fixturenames:
        print(f"worker log (tail):\n{request.getfixturevalue('rig').log_tail()}")


def test_worker_registers_with_a_token_its_own_server_signed(rig: WorkerRig) -> None:
    worker = rig.standin.wait_for_worker(AGENT_NAME)
    assert worker.claims.issuer == API_KEY
    assert worker.claims.agent_grant
    assert worker.claims.expires_at > time.time()
    assert worker.connection.accepted
    assert worker.connection.worker_id == worker.id
    assert worker.version.startswith("1.8")
    # only fingerprints are kept: no raw JWT (they all start with "eyJ") in state or repr
    assert "eyJ" not in json.dumps(rig.standin.state())
    assert API_SECRET not in repr(rig.standin)


def test_dispatch_made_before_any_worker_runs_once_the_worker_registers(rig: WorkerRig) -> None:
    job = rig.standin.wait_for_job_status(rig.queued_job_id, "JS_SUCCESS")
    assert job.statuses == ["JS_PENDING", "JS_RUNNING", "JS_SUCCESS"]
    assert rig.recorded_jobs()[job.id]["metadata"] == "queued"


def test_participant_join_dispatches_a_job_that_runs_in_a_job_process(rig: WorkerRig) -> None:
    joined = rig.standin.join(participant_token("alice", "support-1", config=dispatching("hello")))
    assert joined.created_room
    assert len(joined.job_ids) == 1
    job = rig.standin.wait_for_job_status(joined.job_ids[0], "JS_SUCCESS")

    assert job.statuses == ["JS_PENDING", "JS_RUNNING", "JS_SUCCESS"]
    assert job.worker_id == rig.standin.wait_for_worker(AGENT_NAME).id
    assert job.token_fingerprint
    assert job.participant_identity
    record = rig.recorded_jobs()[job.id]
    assert record == {**record, "metadata": "hello", "room": "support-1"}
    assert record["pid"] != rig.process.pid  # ran in a job process, not the worker's main process
    room = rig.standin.room("support-1")
    assert [(p.identity, p.kind) for p in room.departed] == [(job.participant_identity, "AGENT")]


def test_agent_joining_and_leaving_reach_the_webhook_with_agent_kind(rig: WorkerRig) -> None:
    joined = rig.standin.join(participant_token("bob", "support-2", config=dispatching("hi")))
    job = rig.standin.wait_for_job_status(joined.job_ids[0], "JS_SUCCESS")
    receiver = api.WebhookReceiver(api.TokenVerifier(API_KEY, API_SECRET))

    def agent_events() -> list[tuple[str, int]]:
        events = [receiver.receive(body, headers["Authorization"]) for body, headers in rig.sink.received]
        return [
            (e.event, e.participant.kind)
            for e in events
            if e.room.name == "support-2" and e.participant.identity == job.participant_identity
        ]

    seen = rig.standin.wait_until(lambda: len(agent_events()) == 2 and agent_events(), what="agent webhooks")
    assert seen == [("participant_joined", 4), ("participant_left", 4)]  # ParticipantInfo.Kind.AGENT == 4


def test_terminated_job_ends_and_its_agent_leaves_the_room(rig: WorkerRig) -> None:
    joined = rig.standin.join(participant_token("carol", "held-1", config=dispatching("hold")))
    job = rig.standin.wait_for_job_status(joined.job_ids[0], "JS_RUNNING")
    assert job.participant_identity in rig.standin.room("held-1").participants

    rig.standin.terminate_job(job.id)
    job = rig.standin.wait_for_job_status(job.id, "JS_SUCCESS")
    assert job.participant_identity not in rig.standin.room("held-1").participants


def test_dropped_worker_reconnects_and_keeps_its_running_job(rig: WorkerRig) -> None:
    joined = rig.standin.join(participant_token("dave", "held-2", config=dispatching("hold")))
    job = rig.standin.wait_for_job_status(joined.job_ids[0], "JS_RUNNING")
    before = rig.standin.wait_for_worker(AGENT_NAME)

    assert rig.standin.drop_workers() == 1
    after = rig.standin.wait_for_worker(AGENT_NAME, not_in={before.id}, timeout=30)
    migrated = rig.standin.wait_until(
        lambda: (j := rig.standin.job(job.id)).worker_id == after.id and j, what="job migrating"
    )

    assert migrated.status == "JS_RUNNING"
    assert migrated.migrations == [after.id]
    assert not next(w for w in rig.standin.workers if w.id == before.id).connected
    assert after.claims.issuer == API_KEY
    assert (
        after.connection.at > before.connection.at
    )  # a new, verified connection (same-second JWTs are equal)
    rig.standin.terminate_job(job.id)
    rig.standin.wait_for_job_status(job.id, "JS_SUCCESS")


def test_restarted_server_sees_the_worker_register_again_and_dispatches(rig: WorkerRig) -> None:
    before = rig.standin.wait_for_worker(AGENT_NAME)
    rig.standin.restart()
    after = rig.standin.wait_for_worker(AGENT_NAME, not_in={before.id}, timeout=30)
    assert after.claims.issuer == API_KEY

    joined = rig.standin.join(participant_token("erin", "after-restart", config=dispatching("again")))
    job = rig.standin.wait_for_job_status(joined.job_ids[0], "JS_SUCCESS")
    assert job.worker_id == after.id


# -- the worker websocket's gate, reached with aiohttp and livekit-api tokens ------------------------------


@pytest.fixture
def standin() -> Iterator[LiveKitStandIn]:
    with LiveKitStandIn(api_key=API_KEY, api_secret=API_SECRET, departure_timeout=0.3) as server:
        yield server


def _worker_token(*, secret: str = API_SECRET, ttl: dt.timedelta | None = None, agent: bool = True) -> str:
    token = api.AccessToken(API_KEY, secret).with_grants(api.VideoGrants(agent=agent or None))
    return (token.with_ttl(ttl) if ttl is not None else token).to_jwt()


@pytest.mark.parametrize(
    ("headers", "reason", "claims_kept"),
    [
        ({"Authorization": f"Bearer {_worker_token(secret='x' * 40)}"}, "signature does not verify", False),
        ({"Authorization": f"Bearer {_worker_token(ttl=dt.timedelta(minutes=-5))}"}, "expired", True),
        ({"Authorization": f"Bearer {_worker_token(agent=False)}"}, "no video.agent grant", True),
        ({}, "missing 'Authorization: Bearer", False),
    ],
    ids=["wrong-secret", "expired", "no-agent-grant", "no-header"],
)
async def test_worker_connection_is_refused_with_401_and_recorded(
    standin: LiveKitStandIn, headers: dict[str, str], reason: str, claims_kept: bool
) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(f"{standin.ws_url}/agent", headers=headers)
    assert refused.value.status == 401

    [attempt] = standin.connections
    assert not attempt.accepted
    assert attempt.status == 401
    assert reason in attempt.reason
    assert (attempt.claims is not None) == claims_kept
    if attempt.claims is not None:
        assert attempt.claims.issuer == API_KEY
    assert standin.workers == []


async def test_raw_worker_must_register_first_and_gets_pong_for_ping(standin: LiveKitStandIn) -> None:
    headers = {"Authorization": f"Bearer {_worker_token()}"}
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"{standin.ws_url}/agent", headers=headers) as ws:
            await ws.send_bytes(agent.WorkerMessage(ping=agent.WorkerPing(timestamp=1)).SerializeToString())
            closed = await ws.receive()
            assert closed.type == aiohttp.WSMsgType.CLOSE
            assert closed.data == 1008

        async with session.ws_connect(f"{standin.ws_url}/agent", headers=headers) as ws:
            register = agent.RegisterWorkerRequest(type=agent.JT_ROOM, agent_name="raw")
            await ws.send_bytes(agent.WorkerMessage(register=register).SerializeToString())
            reply = agent.ServerMessage.FromString(await ws.receive_bytes())
            await ws.send_bytes(agent.WorkerMessage(ping=agent.WorkerPing(timestamp=42)).SerializeToString())
            pong = agent.ServerMessage.FromString(await ws.receive_bytes())

    assert reply.register.worker_id
    assert reply.register.server_info.agent_protocol == 1
    assert pong.pong.last_timestamp == 42
    worker = await standin.wait_until_async(
        lambda: not standin.workers[0].connected and standin.workers[0], what="worker disconnect"
    )
    assert worker.id == reply.register.worker_id
    assert worker.agent_name == "raw"


async def test_raw_worker_is_reoffered_after_declining_and_assigned_an_agent_token_for_the_room() -> None:
    async with LiveKitStandIn(api_key=API_KEY, api_secret=API_SECRET, job_migration_grace=0.3) as standin:
        headers = {"Authorization": f"Bearer {_worker_token()}"}
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(f"{standin.ws_url}/agent", headers=headers) as ws,
        ):

            async def send(**message: Any) -> None:
                await ws.send_bytes(agent.WorkerMessage(**message).SerializeToString())

            async def receive() -> agent.ServerMessage:
                return agent.ServerMessage.FromString(await asyncio.wait_for(ws.receive_bytes(), 5))

            await send(register=agent.RegisterWorkerRequest(type=agent.JT_ROOM, agent_name="raw"))
            await receive()
            joined = await standin_call(
                standin.join,
                participant_token("alice", "raw-room", config=dispatching("m", agent_name="raw")),
            )
            offer = (await receive()).availability.job
            assert offer.id == joined.job_ids[0]
            assert (offer.type, offer.metadata, offer.room.name) == (agent.JT_ROOM, "m", "raw-room")
            assert offer.dispatch_id

            await send(availability=agent.AvailabilityResponse(job_id=offer.id, available=False))
            assert (await receive()).availability.job.id == offer.id  # asked again once the decline ages out
            accept = agent.AvailabilityResponse(
                job_id=offer.id, available=True, participant_identity="agent-raw"
            )
            await send(availability=accept)
            assignment = (await receive()).assignment
            # no URL, as livekit-server sends it: the worker uses its own
            assert assignment.url == ""
            claims = api.TokenVerifier(API_KEY, API_SECRET).verify(assignment.token)
            assert (claims.identity, claims.kind) == ("agent-raw", "agent")
            assert claims.video is not None
            assert (claims.video.room, claims.video.room_join, claims.video.agent) == ("raw-room", True, True)

            await send(update_job=agent.UpdateJobStatus(job_id=offer.id, status=agent.JS_RUNNING))
            agent_in_room = await standin.wait_until_async(
                lambda: standin.room("raw-room").participants.get("agent-raw"), what="agent joining"
            )
            assert agent_in_room.kind == "AGENT"
        # the worker went away and never reported the job again
        job = await standin.wait_until_async(
            lambda: (j := standin.job(offer.id)).ended and j, what="job ending"
        )
    assert job.status == "JS_FAILED"
    assert "disconnected" in job.error
    assert "agent-raw" not in standin.room("raw-room").participants


def test_health_answers_ok_and_media_paths_answer_404(standin: LiveKitStandIn) -> None:
    assert httpx.get(f"{standin.url}/").text == "OK"
    for path in ("/rtc", "/rtc/validate", "/twirp/livekit.RoomService/ListRooms"):
        response = (
            httpx.post(f"{standin.url}{path}") if "twirp" in path else httpx.get(f"{standin.url}{path}")
        )
        assert response.status_code == 404, path
        assert "no media server" in response.text


# -- rooms ---------------------------------------------------------------------------------------------------


def test_join_refuses_a_token_signed_with_another_secret(standin: LiveKitStandIn) -> None:
    with pytest.raises(RoomRequestError) as refused:
        standin.join(participant_token("mallory", "r", secret="y" * 40))
    assert refused.value.status == 401
    assert standin.rooms == []


def test_max_participants_from_room_config_rejects_extra_participants(standin: LiveKitStandIn) -> None:
    config = RoomConfiguration(max_participants=2)
    standin.join(participant_token("p1", "small", config=config))
    standin.join(participant_token("p2", "small"))
    with pytest.raises(RoomRequestError) as refused:
        standin.join(participant_token("p3", "small"))
    assert refused.value.status == 403
    assert "max_participants=2" in refused.value.reason
    standin.join(participant_token("p2", "small"))  # the same identity again replaces its session
    assert sorted(standin.room("small").participants) == ["p1", "p2"]


def test_room_finishes_departure_timeout_after_everyone_left(standin: LiveKitStandIn) -> None:
    standin.join(participant_token("p1", "brief", config=RoomConfiguration(departure_timeout=1)))
    standin.join(participant_token("p2", "brief"))
    standin.leave("brief", "p1")
    standin.leave("brief", "p2")
    left = time.monotonic()
    assert standin.room("brief").open

    room = standin.wait_until(
        lambda: not (r := standin.room("brief")).open and r, timeout=5, what="room closing"
    )
    assert time.monotonic() - left >= 0.9
    assert room.close_reason == "departure timeout"
    assert room.departure_timeout == 1


def test_rejoining_within_departure_timeout_keeps_the_room_open(standin: LiveKitStandIn) -> None:
    first = standin.join(participant_token("p1", "flaky"))
    standin.leave("flaky", "p1")
    again = standin.join(participant_token("p1", "flaky"))
    time.sleep(0.5)  # longer than the 0.3 s departure timeout: the rejoin must have cancelled it
    assert again.room_sid == first.room_sid
    assert standin.room("flaky").open


def test_dispatch_without_a_worker_stays_pending_then_fails_when_the_room_closes(
    standin: LiveKitStandIn,
) -> None:
    joined = standin.join(participant_token("p1", "lonely", config=dispatching("m", agent_name="nobody")))
    time.sleep(0.1)
    assert standin.job(joined.job_ids[0]).status == "JS_PENDING"
    standin.leave("lonely", "p1")
    job = standin.wait_until(lambda: (j := standin.job(joined.job_ids[0])).ended and j, what="job failing")
    assert job.status == "JS_FAILED"
    assert "closed before a worker took the job" in job.error


# -- webhooks ------------------------------------------------------------------------------------------------


async def test_webhooks_verify_with_livekit_api_receiver_and_tampering_is_detected() -> None:
    async with (
        WebhookSink() as sink,
        LiveKitStandIn(
            api_key=API_KEY, api_secret=API_SECRET, webhook_url=sink.webhook_url, departure_timeout=0.2
        ) as standin,
    ):
        await standin_call(standin.join, participant_token("alice", "hooked"))
        await standin_call(standin.leave, "hooked", "alice")
        await standin.wait_until_async(lambda: len(sink.received) == 4, what="four webhooks")

    assert sink.events() == ["room_started", "participant_joined", "participant_left", "room_finished"]
    receiver = api.WebhookReceiver(api.TokenVerifier(API_KEY, API_SECRET))
    events = [receiver.receive(body, headers["Authorization"]) for body, headers in sink.received]
    assert len({e.id for e in events}) == 4
    assert all(e.created_at > 0 for e in events)
    assert events[1].participant.identity == "alice"
    assert events[1].participant.kind == 0
    assert all(e.room.name == "hooked" and e.room.sid == events[0].room.sid for e in events)
    for _, headers in sink.received:
        assert headers["Content-Type"] == "application/webhook+json"
        assert not headers["Authorization"].startswith("Bearer")

    body, headers = sink.received[1]
    with pytest.raises(Exception, match="hash mismatch"):
        receiver.receive(body.replace("alice", "mallory"), headers["Authorization"])
    assert [d.status for d in standin.webhook_deliveries] == ["delivered"] * 4


async def standin_call(fn: Callable[..., Any], *args: Any) -> Any:
    """Run a blocking stand-in call off the test loop."""
    return await asyncio.to_thread(fn, *args)


def settled(standin: LiveKitStandIn, status: str, count: int) -> list[WebhookDelivery]:
    """The deliveries once there are ``count`` of them, all with ``status``; empty (falsy) before."""
    deliveries = standin.webhook_deliveries
    done = len(deliveries) == count and all(d.status == status for d in deliveries)
    return deliveries if done else []


def test_webhook_is_retried_after_failing_responses_and_order_is_kept() -> None:
    with (
        WebhookSink() as sink,
        LiveKitStandIn(
            api_key=API_KEY, api_secret=API_SECRET, webhook_url=sink.webhook_url, webhook_retry_backoff=0.05
        ) as standin,
    ):
        sink.fail_next = 2
        standin.join(participant_token("alice", "retried"))
        deliveries = standin.wait_until(
            lambda: settled(standin, "delivered", 2), what="both webhooks delivered"
        )

    assert [d.event for d in deliveries] == ["room_started", "participant_joined"]
    assert deliveries[0].attempts == 3
    assert deliveries[0].response_statuses == [500, 500, 200]
    assert deliveries[1].attempts == 1
    assert sink.events() == ["room_started"] * 3 + ["participant_joined"]


def test_webhook_delivery_gives_up_after_bounded_attempts() -> None:
    with WebhookSink() as sink:
        dead_url = sink.webhook_url  # nothing listens here once the sink stops
    with LiveKitStandIn(
        api_key=API_KEY,
        api_secret=API_SECRET,
        webhook_url=dead_url,
        webhook_max_attempts=3,
        webhook_retry_backoff=0.01,
    ) as standin:
        standin.join(participant_token("alice", "unheard"))
        deliveries = standin.wait_until(lambda: settled(standin, "failed", 2), what="both webhooks failing")
    assert [d.attempts for d in deliveries] == [3, 3]
    assert all(d.last_error and d.response_statuses == [] for d in deliveries)


# -- process mode --------------------------------------------------------------------------------------------


def test_process_mode_prints_its_urls_serves_admin_routes_and_exits_on_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "livekit_platform_testing.livekit", "--departure-timeout", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={k: v for k, v in os.environ.items() if not k.startswith("LIVEKIT_API_")},
    )
    try:
        assert process.stdout is not None
        info = json.loads(process.stdout.readline())
        assert info["ws_url"].startswith("ws://127.0.0.1:")
        assert info["url"].startswith("http://127.0.0.1:")
        assert len(info["api_secret"]) >= 32  # generated, so the caller learns it from this line only

        token = (
            api.AccessToken(info["api_key"], info["api_secret"])
            .with_identity("alice")
            .with_grants(api.VideoGrants(room_join=True, room="via-http"))
            .to_jwt()
        )
        joined = httpx.post(f"{info['url']}/_standin/join", json={"token": token})
        assert joined.status_code == 200
        assert joined.json()["created_room"] is True
        refused = httpx.post(f"{info['url']}/_standin/join", json={"token": token[:-4] + "AAAA"})
        assert refused.status_code == 401
        assert "signature" in refused.json()["error"]
        state = httpx.get(f"{info['url']}/_standin/state").json()
        assert [r["name"] for r in state["rooms"]] == ["via-http"]
        assert httpx.post(
            f"{info['url']}/_standin/leave", json={"room": "via-http", "identity": "alice"}
        ).is_success
        assert httpx.post(f"{info['url']}/_standin/drop-workers").json() == {"dropped": 0}
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0


async def test_a_token_of_a_key_the_server_does_not_know_is_refused_as_an_invalid_api_key() -> None:
    # livekit-server (pkg/service/auth.go) looks the token's iss up among its keys before verifying anything:
    # a token signed with another key pair is refused for its key, whatever its signature
    foreign = api.AccessToken("lkps-agent", "s" * 48).with_grants(api.VideoGrants(agent=True)).to_jwt()
    async with (
        LiveKitStandIn(api_key=API_KEY, api_secret=API_SECRET) as standin,
        aiohttp.ClientSession() as http,
    ):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(f"{standin.ws_url}/agent", headers={"Authorization": f"Bearer {foreign}"})
    assert refused.value.status == 401
    attempt = standin.connections[-1]
    assert (attempt.accepted, attempt.status) == (False, 401)
    assert attempt.reason.startswith("invalid API key: the token's iss 'lkps-agent'")
