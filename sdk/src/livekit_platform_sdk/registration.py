"""The platform's registration call: Entra bearer in, a scoped LiveKit token out, with retries, spans and
metrics. Nothing the platform (or a proxy in front of it) answers is logged or raised unredacted."""

from __future__ import annotations

import json
import logging
import re
import ssl
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from opentelemetry.trace import Span, Status, StatusCode

from . import telemetry
from .identity import CredentialError, PlatformIdentity
from .metrics import Call, FailureReason, Outcome, PlatformMetrics, default_metrics
from .redaction import redact
from .retry import RetryPolicy, Timing, parse_retry_after
from .settings import Settings

if TYPE_CHECKING:
    # httpx is imported when a client is built: job processes import the SDK with the agent module but never
    # call the platform, so they skip its import time and memory
    import httpx
    from opentelemetry.trace import TracerProvider

logger = logging.getLogger("livekit_platform_sdk")

_NOT_RETRIED = {400, 401, 403}
# The platform's error shape ({"error", "detail", "field"}): the only parts of an error body ever shown.
_ERROR_FIELDS = ("error", "detail", "field")
_FIELD_LIMIT = 200
_MEDIA_TYPE = re.compile(r"^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+")
_AGENT_NAME_LIMIT = 128


class RegistrationError(RuntimeError):
    """Registration failed for good (this attempt sequence is over)."""


class RegistrationRefusedError(RegistrationError):
    """The platform answered 400/401/403 (or another final 4xx): retrying cannot help."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


class PlatformUnavailableError(RegistrationError):
    """Every attempt failed with a transient error (network, timeout, 5xx, 429) until attempts ran out."""


@dataclass(frozen=True)
class PlatformGrant:
    """A LiveKit token issued by the platform; the token is kept out of repr and logs."""

    livekit_token: str = field(repr=False)
    livekit_url: str
    issued_at: float
    expires_at: float
    agent_name: str | None = None
    """The platform's canonical LiveKit agent name for this identity, when it says one."""

    @property
    def lifetime(self) -> float:
        return self.expires_at - self.issued_at

    def valid_at(self, now: float) -> bool:
        return now < self.expires_at

    @property
    def expires_at_iso(self) -> str:
        return datetime.fromtimestamp(self.expires_at, timezone.utc).isoformat()

    @property
    def livekit_url_shown(self) -> str:
        """``livekit_url`` as logs and spans show it: scheme, host and path only."""
        return shown_url(self.livekit_url)


class _TransientError(Exception):
    def __init__(self, reason: str, kind: FailureReason, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind
        self.retry_after = retry_after


class PlatformClient:
    """Calls ``POST {LIVEKIT_PLATFORM_URL}/api/agent/register``; ``transport`` is the httpx seam for tests."""

    def __init__(
        self,
        settings: Settings,
        identity: PlatformIdentity,
        *,
        timing: Timing | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        verify: ssl.SSLContext | str | bool = True,
        metrics: PlatformMetrics | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self._settings = settings
        self._identity = identity
        self._timing = timing or Timing()
        self._metrics = metrics or default_metrics()
        self._tracer_provider = tracer_provider
        self._bearer = ""  # the Entra token last sent: redacted from anything the answer puts in a message
        self._policy = RetryPolicy(settings.retry_initial_delay, settings.retry_max_delay)
        import httpx

        from .transport import AiohttpTransport

        self._http = httpx.AsyncClient(
            timeout=settings.http_timeout, transport=transport or AiohttpTransport(verify=verify)
        )
        self.agent_app_id: str | None = settings.azure_client_id

    async def aclose(self) -> None:
        try:
            await self._http.aclose()
        finally:  # the credential's own HTTP session too, even when the first close was interrupted
            await self._identity.close()

    async def register(
        self,
        *,
        renewal: bool = False,
        max_attempts: int | None = None,
        deadline: float | None = None,
        retry_credential_errors: bool = False,
    ) -> PlatformGrant:
        """Register (``renewal``: renew), retrying transient failures until ``max_attempts`` or the wall-clock
        ``deadline``.

        ``RegistrationRefusedError`` and (unless ``retry_credential_errors``) ``CredentialError`` end at once.
        """
        call: Call = "renew" if renewal else "register"
        started = time.monotonic()
        outcome: Outcome | None = None
        try:
            grant = await self._register(call, max_attempts, deadline, retry_credential_errors)
            outcome = "success"
            return grant
        except RegistrationRefusedError:
            outcome = "refused"
            raise
        except PlatformUnavailableError:
            outcome = "unavailable"
            raise
        except RegistrationError:
            outcome = "invalid_response"
            raise
        except CredentialError:
            outcome = "credential_error"
            raise
        finally:
            if outcome is not None:  # a cancelled registration has no outcome
                self._metrics.registration(call, outcome, time.monotonic() - started)

    async def _register(
        self, call: Call, max_attempts: int | None, deadline: float | None, retry_credential_errors: bool
    ) -> PlatformGrant:
        timing = self._timing
        span_name = telemetry.SPAN_RENEW if call == "renew" else telemetry.SPAN_REGISTER
        tracer = telemetry.tracer(self._tracer_provider)
        with tracer.start_as_current_span(span_name, record_exception=False) as span:
            span.set_attribute(telemetry.ATTR_PLATFORM_URL, self._settings.platform_url)
            attempt = 0
            while True:
                attempt += 1
                span.set_attribute(telemetry.ATTR_ATTEMPT, attempt)
                try:
                    grant = await self._attempt(span, retry_credential_errors)
                except _TransientError as exc:
                    reason, retry_after = exc.reason, exc.retry_after
                    if call == "renew":
                        self._metrics.renewal_failure(exc.kind)
                except RegistrationError as exc:
                    if call == "renew":
                        refused = isinstance(exc, RegistrationRefusedError)
                        self._metrics.renewal_failure("refused" if refused else "invalid_response")
                    _fail(span, exc)
                    raise
                except CredentialError as exc:
                    if call == "renew":
                        self._metrics.renewal_failure("credential_error")
                    _fail(span, exc)
                    raise
                else:
                    span.set_attribute(telemetry.ATTR_TOKEN_EXPIRES_AT, grant.expires_at_iso)
                    if self.agent_app_id:
                        span.set_attribute(telemetry.ATTR_AGENT_APP_ID, self.agent_app_id)
                    span.set_status(Status(StatusCode.OK))
                    return grant

                delay = self._policy.delay_honouring(attempt, retry_after, rng=timing.rng)
                out_of_attempts = max_attempts is not None and attempt >= max_attempts
                remaining = None if deadline is None else deadline - timing.clock()
                if out_of_attempts or (remaining is not None and remaining <= 0):
                    error = PlatformUnavailableError(
                        f"the LiveKit Platform Service at LIVEKIT_PLATFORM_URL={self._settings.platform_url} "
                        f"could not be reached after {attempt} attempt(s); last error: {reason}"
                    )
                    _fail(span, error)
                    raise error
                if remaining is not None:
                    delay = min(delay, remaining)
                span.add_event(
                    "retry", {telemetry.ATTR_ATTEMPT: attempt, "reason": reason, "delay_seconds": delay}
                )
                logger.warning(
                    "platform registration attempt failed, retrying",
                    extra={"attempt": attempt, "reason": reason, "retry_in_seconds": round(delay, 2)},
                )
                await timing.sleep(delay)

    async def _attempt(self, span: Span, retry_credential_errors: bool) -> PlatformGrant:
        import httpx

        try:
            entra = await self._identity.get_token()
        except CredentialError as exc:
            if retry_credential_errors:
                raise _TransientError(
                    f"Entra token: {exc.attempts[-1][1] if exc.attempts else exc}", "credential_error"
                ) from None
            raise
        # the identity the platform sees is the token's; AZURE_CLIENT_ID only when the token names none
        if entra.app_id:
            self.agent_app_id = entra.app_id
        self._bearer = entra.value
        body = {"service_config": {"enforce_client_authz": self._settings.enforce_client_authz}}
        try:
            response = await self._http.post(
                self._settings.register_url,
                json=body,
                headers={"Authorization": f"Bearer {entra.value}", "Accept": "application/json"},
            )
        except httpx.TimeoutException as exc:
            raise _TransientError(
                f"timed out after {self._settings.http_timeout}s ({type(exc).__name__})", "timeout"
            ) from None
        except httpx.TransportError as exc:
            detail = redact(str(exc), [entra.value])
            raise _TransientError(f"network error: {type(exc).__name__}: {detail}", "network") from None
        span.set_attribute(telemetry.ATTR_HTTP_STATUS, response.status_code)
        status = response.status_code
        if status == 429 or status >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), now=self._timing.clock())
            kind: FailureReason = "rate_limited" if status == 429 else "unavailable"
            raise _TransientError(f"HTTP {status}: {self.platform_said(response)}", kind, retry_after)
        if status in _NOT_RETRIED or 400 <= status < 500:
            raise RegistrationRefusedError(status, self._refusal_message(status, response))
        if status != 200:
            raise RegistrationError(f"unexpected HTTP {status} from {self._settings.register_url}")
        return self._grant(response)

    def _refusal_message(self, status: int, response: httpx.Response) -> str:
        url = self._settings.register_url
        detail = self.platform_said(response)
        if status == 401:
            fix = (
                "the platform did not accept the Entra token: check LIVEKIT_PLATFORM_SCOPE names the "
                "platform's app registration and that the agent's identity belongs to the platform's tenant"
            )
        elif status == 403:
            fix = (
                "the agent's Entra identity is not allowed to register: ask the platform team to assign the "
                "agent app role to this app (or check it was not revoked)"
            )
        elif status == 400:
            fix = (
                "the platform rejected the registration request: check LIVEKIT_PLATFORM_ENFORCE_CLIENT_AUTHZ"
            )
        else:
            fix = "the platform refused the registration"
        return f"POST {url} answered HTTP {status}: {fix}. Platform said: {detail}"

    def _grant(self, response: httpx.Response) -> PlatformGrant:
        url = self._settings.register_url
        try:
            payload = response.json()
        except ValueError:
            raise RegistrationError(f"POST {url} answered 200 with a body that is not JSON") from None
        if not isinstance(payload, dict):
            raise RegistrationError(f"POST {url} answered 200 with JSON that is not an object")
        token = payload.get("livekit_token")
        livekit_url = payload.get("livekit_url")
        expires_in = payload.get("expires_in")
        agent_name = payload.get("agent_name")
        problems = []
        if not isinstance(token, str) or not token:
            problems.append("livekit_token is missing or not a string")
        if not isinstance(livekit_url, str) or not livekit_url.startswith(
            ("ws://", "wss://", "http://", "https://")
        ):
            problems.append("livekit_url is missing or not a ws(s)/http(s) URL")
        if isinstance(expires_in, bool) or not isinstance(expires_in, (int, float)) or expires_in <= 0:
            problems.append("expires_in is missing or not a positive number of seconds")
        if agent_name is not None and not _is_agent_name(agent_name):
            problems.append(
                f"agent_name is not a non-empty string of at most {_AGENT_NAME_LIMIT} printable characters"
            )
        if problems:
            raise RegistrationError(f"POST {url} answered 200 but " + "; ".join(problems))
        assert isinstance(token, str)
        assert isinstance(livekit_url, str)
        assert isinstance(expires_in, (int, float))
        issued_at = self._timing.clock()
        name = agent_name if isinstance(agent_name, str) else None
        return PlatformGrant(token, livekit_url, issued_at, issued_at + float(expires_in), name)

    def platform_said(self, response: httpx.Response) -> str:
        """What an error answer may show: the platform's own ``error``/``detail``/``field`` strings, redacted;
        any other body (a proxy's page, an echo of the request) only by its type and size."""
        fields = _error_fields(response)
        if fields:
            shown = {
                name: redact(value, [self._bearer], limit=_FIELD_LIMIT) for name, value in fields.items()
            }
            text = shown.get("error", "")
            if "detail" in shown:
                text = f"{text}: {shown['detail']}" if text else shown["detail"]
            if "field" in shown:
                text += f" (field: {shown['field']})"
            return text
        if not response.content:
            return "an empty body"
        match = _MEDIA_TYPE.match(response.headers.get("Content-Type", ""))
        media = match.group(0) if match else "untyped"
        size = len(response.content)
        return f"a body of {size} bytes ({media}), not the platform's error shape (not shown)"


def _error_fields(response: httpx.Response) -> dict[str, str]:
    try:
        payload = json.loads(response.content)
    except ValueError:
        return {}
    if not isinstance(payload, dict):
        return {}
    return {name: payload[name] for name in _ERROR_FIELDS if isinstance(payload.get(name), str)}


def _is_agent_name(value: object) -> bool:
    return (
        isinstance(value, str)
        and 0 < len(value) <= _AGENT_NAME_LIMIT
        and value == value.strip()
        and value.isprintable()
    )


def shown_url(url: str) -> str:
    """A URL from outside as logs show it: no user info, query or fragment (where tokens ride)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return redact(parts._replace(netloc=host, query="", fragment="").geturl(), limit=200)


def _fail(span: Span, exc: BaseException) -> None:
    span.set_status(Status(StatusCode.ERROR, str(exc).splitlines()[0]))
    span.set_attribute("error.type", type(exc).__name__)
