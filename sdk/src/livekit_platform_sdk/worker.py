"""``Worker``: a livekit-agents ``AgentServer`` that connects with platform-issued tokens, not an API secret.

Relies on one private seam of livekit-agents (pinned minor range, tested on upgrade):
``AgentServer._connection_task`` opens the worker websocket with
``self._http_session.ws_connect(..., headers={"Authorization": ...})`` on every (re)connect. ``Worker``
overrides ``_connection_task`` to put a session wrapper in front of it that replaces the self-signed bearer
with the newest platform token.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import sys
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, cast, overload

import aiohttp
from livekit.agents import AgentServer
from livekit.agents.types import NOT_GIVEN, NotGivenOr
from opentelemetry.trace import Span, Status, StatusCode

from . import guard, telemetry
from .identity import CredentialError, PlatformIdentity
from .metrics import default_metrics
from .readiness import Readiness, ReadinessServer
from .registration import PlatformClient, PlatformGrant, RegistrationError
from .renewal import Renewer, TokenStore
from .retry import Timing
from .settings import Settings, SettingsError

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential
    from opentelemetry.sdk.trace import TracerProvider

logger = logging.getLogger("livekit_platform_sdk")

PLACEHOLDER_PREFIX = "lkps-placeholder-"
_IGNORED_ENV = ("LIVEKIT_API_KEY", "LIVEKIT_API_SECRET")
_REFUSED_KWARGS = ("api_key", "api_secret", "ws_url")
# upstream's ways to choose the agent name besides rtc_session(agent_name=...), read when it is called
_UPSTREAM_NAME_ENV = ("LIVEKIT_AGENT_NAME_OVERRIDE", "LIVEKIT_AGENT_NAME")

guard.install()


class PlatformError(RuntimeError):
    """The worker cannot (or can no longer) run on the platform; the message says why and what to do."""


def _placeholder() -> str:
    # upstream refuses to start without a key and secret and exports them to job processes; these are random
    # per process and registered nowhere, so nothing they sign is accepted by any LiveKit server
    return PLACEHOLDER_PREFIX + secrets.token_urlsafe(32)


class _PlatformSession:
    """Sits where upstream expects its aiohttp session; only ``ws_connect`` differs (the platform token)."""

    def __init__(self, session: aiohttp.ClientSession, worker: Worker) -> None:
        self._session = session
        self._worker = worker

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    async def ws_connect(self, url: str, **kwargs: Any) -> aiohttp.ClientWebSocketResponse[bool]:
        return await self._worker._platform_ws_connect(self._session, url, **kwargs)


class Worker(AgentServer):
    """An ``AgentServer`` authenticated by the agent's Entra identity through the LiveKit Platform Service.

    Takes every ``AgentServer`` option except ``api_key``, ``api_secret`` and ``ws_url``: the platform
    issues the token and names the LiveKit URL. ``settings`` defaults to ``Settings.from_env()`` at start;
    ``credential`` replaces the credential the SDK would pick (any azure-identity async credential).
    """

    def __init__(
        self,
        *,
        settings: Settings | None = None,
        credential: AsyncTokenCredential | None = None,
        **kwargs: Any,
    ) -> None:
        if "agent_name" in kwargs:
            raise TypeError(
                "Worker() does not take agent_name: the worker's LiveKit agent name is its Entra app "
                "(client) ID, which the platform binds to that identity; remove the argument (clients start "
                "sessions with agent_entra_app_id=<the app ID>)"
            )
        refused = [name for name in _REFUSED_KWARGS if name in kwargs]
        if refused:
            raise TypeError(
                f"Worker() does not take {', '.join(refused)}: the LiveKit Platform Service issues the "
                "token and the LiveKit URL; remove the argument(s) and set LIVEKIT_PLATFORM_URL and "
                "LIVEKIT_PLATFORM_SCOPE"
            )
        for name in _IGNORED_ENV:
            value = os.environ.get(name, "")
            if value and not value.startswith(PLACEHOLDER_PREFIX):
                logger.warning(
                    f"{name} is set in the environment and is ignored: agents on the platform never use "
                    "LiveKit API credentials; remove it from the deployment"
                )
        super().__init__(api_key=_placeholder(), api_secret=_placeholder(), **kwargs)
        self._ws_url = ""  # upstream read LIVEKIT_URL; the platform names the URL
        self._platform_settings = settings
        self._platform_credential = credential
        self._token_store = TokenStore()
        self._platform_client: PlatformClient | None = None
        self._renewal_task: asyncio.Task[None] | None = None
        self._renewer: Renewer | None = None
        self._refused_grant: PlatformGrant | None = None
        self._fatal_task: asyncio.Task[None] | None = None
        self._platform_error: BaseException | None = None
        self._readiness: ReadinessServer | None = None
        self._tracer_provider: TracerProvider | None = None
        self._connect_span: Span | None = None
        self._registered_ws: aiohttp.ClientWebSocketResponse[bool] | None = None
        self._pending_ws: aiohttp.ClientWebSocketResponse[bool] | None = None
        self._session_wrapper: _PlatformSession | None = None
        self._timing = Timing()
        self._upstream_started = False
        self._explicit_prometheus_port: int | None = kwargs.get("prometheus_port")
        self.on("worker_registered", self._on_worker_registered)

    # -- public state ---------------------------------------------------------------------------------------

    @property
    def token_store(self) -> TokenStore:
        return self._token_store

    @property
    def platform_error(self) -> BaseException | None:
        """Why the worker stopped, when it stopped because of the platform or its identity."""
        return self._platform_error

    @property
    def readiness_port(self) -> int | None:
        return self._readiness.port if self._readiness is not None else None

    def readiness(self) -> Readiness:
        if self._platform_error is not None:
            return Readiness(False, "stopped: " + str(self._platform_error).splitlines()[0])
        if not self._token_store.has_grant:
            return Readiness(False, "not registered with the platform yet")
        if not self._token_store.valid_at(self._timing.clock()):
            return Readiness(False, "the platform token has expired")
        if self.draining:
            return Readiness(False, "draining")
        if not self.registered_with_livekit:
            return Readiness(False, "not registered with LiveKit")
        return Readiness(True, f"registered with LiveKit as worker {self.id}")

    @property
    def registered_with_livekit(self) -> bool:
        """True while LiveKit has confirmed the worker's registration on its open websocket."""
        ws = self._registered_ws
        return ws is not None and not ws.closed

    @property
    def agent_name(self) -> str:
        """The LiveKit agent name the worker announces: the platform's name for its identity (its Entra app
        ID); empty until the first registration with the platform."""
        return self._agent_name

    # -- running --------------------------------------------------------------------------------------------

    @overload  # type: ignore[override]  # the sync CLI entry and upstream's async run share the name
    def run(self) -> None: ...

    @overload
    def run(self, *, devmode: bool, unregistered: bool = False) -> Coroutine[Any, Any, None]: ...

    @overload
    def run(self, *, unregistered: bool) -> Coroutine[Any, Any, None]: ...

    def run(
        self, *, devmode: bool | None = None, unregistered: bool | None = None
    ) -> Coroutine[Any, Any, None] | None:
        """``worker.run()`` runs the CLI (``start``, ``dev``, ``console``) like ``cli.run_app``.

        ``await worker.run(devmode=..., unregistered=...)`` is upstream's async run (the CLI calls it).
        """
        if devmode is None and unregistered is None:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                self._run_cli()
                return None
            raise RuntimeError(
                "worker.run() starts the command line and its own event loop; inside a running event loop "
                "use `await worker.run(devmode=False)` instead"
            )
        return self._run_async(devmode=bool(devmode), unregistered=bool(unregistered))

    def _run_cli(self) -> None:
        from livekit.agents import cli

        code: int | str | None = 0
        try:
            cli.run_app(self)
        except SystemExit as exc:
            code = exc.code
        if self._platform_error is not None:
            print(f"livekit-platform-sdk: {self._platform_error}", file=sys.stderr, flush=True)
            raise SystemExit(1)
        if code not in (0, None):
            raise SystemExit(code)

    async def _run_async(self, *, devmode: bool, unregistered: bool) -> None:
        if unregistered:
            # console mode and friends: no LiveKit server, so no platform either
            self._upstream_started = True
            await AgentServer.run(self, devmode=devmode, unregistered=True)
            return
        self._platform_error = None
        try:
            await self._start_platform()
            self._upstream_started = True
            await AgentServer.run(self, devmode=devmode, unregistered=False)
        except (SettingsError, CredentialError, RegistrationError, PlatformError) as exc:
            self._platform_error = exc
            logger.error(str(exc))
            raise
        finally:
            await self._stop_platform()
        if self._platform_error is not None:
            raise self._platform_error

    async def _start_platform(self) -> None:
        settings = self._platform_settings or Settings.from_env()
        self._tracer_provider = telemetry.configure_tracing()
        self._use_metrics_port(settings)
        metrics = default_metrics()
        metrics.watch(
            expiry=lambda: self._token_store.current.expires_at if self._token_store.has_grant else None,
            registered=lambda: self.registered_with_livekit,
            clock=self._timing.clock,
        )
        chosen = self._agent_name  # from rtc_session(agent_name=...) or upstream's variables, if any
        client = PlatformClient(
            settings,
            PlatformIdentity(settings, self._platform_credential),
            timing=self._timing,
            metrics=metrics,
        )
        self._platform_client = client
        grant = await client.register(max_attempts=settings.register_attempts)
        identity = client.agent_app_id
        if not identity:
            raise PlatformError(
                "could not tell the agent's Entra app (client) ID, which is its LiveKit agent name: its "
                "Entra token names none; set AZURE_CLIENT_ID to the agent's app (client) ID"
            )
        _check_chosen_names(settings, chosen, identity)
        self._agent_name = identity
        self._token_store.on_replace(self._use_grant)
        self._token_store.replace(grant)
        logger.info(
            "registered with the LiveKit Platform Service",
            extra={
                "agent_name": self._agent_name,
                "livekit_url": grant.livekit_url_shown,
                "expires_at": grant.expires_at_iso,
            },
        )
        if settings.readiness_port:
            self._readiness = ReadinessServer(
                self.readiness, host=settings.readiness_host, port=settings.readiness_port
            )
            await self._readiness.start()
        self._renewer = Renewer(
            self._token_store, client, self._fail, margin=settings.renew_margin, timing=self._timing
        )
        self._renewal_task = asyncio.create_task(self._renewer.run(), name="livekit_platform_renewal")

    async def _stop_platform(self) -> None:
        """Release what ``_start_platform`` made. Upstream's CLI cancels every task once the server has
        closed, this one possibly mid-cleanup: each step runs whatever happened to the one before, and the
        HTTP sessions (aiohttp reports unclosed ones when they are collected) close first."""
        current = asyncio.current_task()
        tasks = [
            task
            for task in (self._renewal_task, self._fatal_task)
            if task is not None and task is not current and not task.done()
        ]
        for task in tasks:
            task.cancel()
        self._end_connect_span("worker stopped before registering with LiveKit")
        client, self._platform_client = self._platform_client, None
        readiness, self._readiness = self._readiness, None
        steps: list[Callable[[], Awaitable[object]]] = []
        if client is not None:
            steps.append(client.aclose)
        if tasks:
            steps.append(lambda: asyncio.gather(*tasks, return_exceptions=True))
        if readiness is not None:
            steps.append(readiness.stop)
        interrupted: asyncio.CancelledError | None = None
        for step in steps:
            try:
                await step()
            except asyncio.CancelledError as exc:
                interrupted = exc
        if self._tracer_provider is not None:
            self._tracer_provider.force_flush()
        if interrupted is not None:
            raise interrupted

    def _use_metrics_port(self, settings: Settings) -> None:
        """livekit-agents serves ``/metrics`` on its ``prometheus_port``: LIVEKIT_PLATFORM_METRICS_PORT sets
        it unless the application passed ``Worker(prometheus_port=...)`` (the two must then agree)."""
        explicit = self._explicit_prometheus_port
        if settings.metrics_port:
            if explicit is not None and explicit != settings.metrics_port:
                raise PlatformError(
                    f"LIVEKIT_PLATFORM_METRICS_PORT={settings.metrics_port} and Worker(prometheus_port="
                    f"{explicit}) disagree: set the port in one place (remove one of them)"
                )
            self._prometheus_port = settings.metrics_port
        multiprocess = self._prometheus_multiproc_dir or os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if self._prometheus_port is not None and multiprocess:
            logger.warning(
                "PROMETHEUS_MULTIPROC_DIR (or prometheus_multiproc_dir) is set: livekit-agents then serves "
                "only the metrics in its multiprocess files, so the SDK's livekit_platform_* metrics are not "
                "exported; unset it to export them"
            )

    def _use_grant(self, grant: PlatformGrant) -> None:
        # the next (re)connect picks the new token, URL and name up; a live connection is left alone
        self._ws_url = grant.livekit_url
        self._agent_name = grant.agent_name or self._agent_name

    async def _fail(self, message: str) -> None:
        """Stop for good: no new jobs, let running ones finish (up to drain_timeout), close, exit non-zero."""
        if self._platform_error is not None:
            return
        self._platform_error = PlatformError(message)
        logger.error(f"stopping the worker: {message}")
        self._fatal_task = asyncio.create_task(self._drain_and_close(), name="livekit_platform_fatal")

    async def _drain_and_close(self) -> None:
        try:
            await self.drain()
        except asyncio.TimeoutError:
            logger.warning("drain timed out; closing with jobs still running")
        await self.aclose()

    async def drain(self, timeout: NotGivenOr[int | None] = NOT_GIVEN) -> None:
        if not self._upstream_started:
            return  # the platform failed before upstream set up its process pool: nothing to drain
        await super().drain(timeout)

    async def aclose(self) -> None:
        if not self._upstream_started:
            return  # upstream's aclose expects the state its run() creates
        await super().aclose()

    # -- the private seam -----------------------------------------------------------------------------------

    async def _connection_task(self) -> None:
        session = self._http_session
        if session is not None and cast(object, session) is not self._session_wrapper:
            # run() makes a new session each time it starts: wrap that one
            self._session_wrapper = _PlatformSession(session, self)
            self._http_session = cast(aiohttp.ClientSession, self._session_wrapper)
        await super()._connection_task()

    async def _platform_ws_connect(
        self, session: aiohttp.ClientSession, url: str, **kwargs: Any
    ) -> aiohttp.ClientWebSocketResponse[bool]:
        self._end_connect_span("reconnecting before the previous connection registered")
        self._registered_ws = None
        grant = self._token_store.current
        headers = dict(kwargs.pop("headers", None) or {})
        headers["Authorization"] = f"Bearer {grant.livekit_token}"
        span = telemetry.tracer().start_span(telemetry.SPAN_CONNECT)
        span.set_attribute(telemetry.ATTR_LIVEKIT_URL, grant.livekit_url_shown)
        span.set_attribute(telemetry.ATTR_TOKEN_EXPIRES_AT, grant.expires_at_iso)
        span.set_attribute(telemetry.ATTR_AGENT_NAME, self._agent_name)
        if self._platform_client is not None and self._platform_client.agent_app_id:
            span.set_attribute(telemetry.ATTR_AGENT_APP_ID, self._platform_client.agent_app_id)
        try:
            ws = await session.ws_connect(url, headers=headers, **kwargs)
        except aiohttp.WSServerHandshakeError as exc:
            span.set_attribute(telemetry.ATTR_HTTP_STATUS, exc.status)
            _end_error(span, f"LiveKit refused the worker connection: HTTP {exc.status}")
            if exc.status == 401:
                self._renew_refused(grant)
            raise
        except Exception as exc:
            _end_error(span, f"could not connect to LiveKit: {type(exc).__name__}")
            raise
        self._connect_span = span
        self._pending_ws = ws
        return ws

    def _renew_refused(self, grant: PlatformGrant) -> None:
        """The platform's relay refused the token (the agent was revoked, or the token expired): ask the
        platform for a new one now rather than at the usual renewal time, once per refused token. A refusal
        of the renewal stops the worker (drain, exit non-zero); a new token is used on the next retry."""
        if self._renewer is None or self._refused_grant is grant or self._platform_error is not None:
            return
        self._refused_grant = grant
        logger.warning("the worker connection was refused (HTTP 401): renewing the platform token now")
        if self._renewal_task is not None:
            self._renewal_task.cancel()
        self._renewal_task = asyncio.create_task(
            self._renewer.run(at_once=True), name="livekit_platform_renewal"
        )

    def _on_worker_registered(self, worker_id: str, *_: Any) -> None:
        self._registered_ws = self._pending_ws
        span, self._connect_span = self._connect_span, None
        if span is not None:
            span.set_attribute(telemetry.ATTR_WORKER_ID, worker_id)
            span.set_status(Status(StatusCode.OK))
            span.end()

    def _end_connect_span(self, reason: str) -> None:
        span, self._connect_span = self._connect_span, None
        if span is not None:
            _end_error(span, reason)

    # -- options upstream would take from the CLI or environment -------------------------------------------

    def update_options(self, **kwargs: Any) -> None:
        ignored = [name for name in _REFUSED_KWARGS if kwargs.pop(name, None)]
        if ignored:
            logger.warning(
                f"ignoring {', '.join(ignored)} (from the command line or LIVEKIT_URL/LIVEKIT_API_KEY/"
                "LIVEKIT_API_SECRET): the LiveKit Platform Service issues the token and names the URL"
            )
        super().update_options(**kwargs)


def _same_agent(name: str, app_id: str) -> bool:
    """Equal as GUIDs (any case, braces or none), or as strings when either is no GUID."""
    try:
        return uuid.UUID(name) == uuid.UUID(app_id)
    except ValueError:
        return name == app_id


def _check_chosen_names(settings: Settings, chosen: str, identity: str) -> None:
    """Nothing chooses the agent name: it is the identity, which the platform binds the worker to. A name
    set the old ways is refused unless it is that identity."""
    if settings.agent_name is not None:
        if not _same_agent(settings.agent_name, identity):
            raise SettingsError(
                [
                    f"LIVEKIT_PLATFORM_AGENT_NAME={settings.agent_name!r} is not this agent's identity: the "
                    f"worker's LiveKit agent name is its Entra app (client) ID, {identity}, and the platform "
                    "binds it to that identity; remove LIVEKIT_PLATFORM_AGENT_NAME from the deployment "
                    f"(clients start sessions with agent_entra_app_id={identity})"
                ],
                Settings.subject,
            )
        logger.warning(
            "LIVEKIT_PLATFORM_AGENT_NAME is deprecated and has no effect: the agent name is always the "
            f"agent's Entra app (client) ID ({identity}); remove it from the deployment"
        )
    if chosen and not _same_agent(chosen, identity):
        source = next(
            (name for name in _UPSTREAM_NAME_ENV if os.environ.get(name) == chosen),
            "rtc_session(agent_name=...)",
        )
        raise PlatformError(
            f"the worker's agent name {chosen!r} (from {source}) is not this agent's identity: its LiveKit "
            f"agent name is its Entra app (client) ID, {identity}, which the platform binds it to; remove "
            f"{'agent_name=... from @worker.rtc_session()' if source.startswith('rtc') else source} "
            f"(clients start sessions with agent_entra_app_id={identity})"
        )


def _end_error(span: Span, description: str) -> None:
    span.set_status(Status(StatusCode.ERROR, description))
    span.end()
