"""Speedup ``routes``: the API's POST routes (register, session start, webhooks), dispatched ahead of
Starlette's router.

Starlette's exception middleware, router and per-request wrappers cost about 45 µs a request on this service's
machines (a constant-JSON endpoint as a Starlette route and as a plain ASGI app under the same uvicorn): a
sixth of ``register``'s CPU time, on a one-process service where CPU time is throughput. As the
innermost user middleware, this sends a ``POST`` to one of these paths straight to its endpoint and answers
its ``ApiError`` as the app's handler does (:func:`lkps.api.responses.error_response`). Anything else the
endpoint raises reaches Starlette's ``ServerErrorMiddleware`` (a 500, the traceback logged) as from any route;
every other request (other methods and paths, lifespan) goes down the stack unchanged, so 404s and 405s stay
Starlette's.

With metrics on, it times its own requests into the same duration series (and sits outside
:class:`lkps.observability.metrics.RequestMetrics`, which times the rest): it knows the route and has the
response's status, so it needs no wrapper around ``send``, which was half of the timing's cost.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from time import perf_counter

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ..api.responses import JsonResponse, RefusalHook, client_address, error_response
from ..errors import ApiError
from ..observability.metrics import Durations, Metrics

Endpoint = Callable[[Request], Awaitable[Response]]


class HotRoutes:
    def __init__(
        self,
        app: ASGIApp,
        routes: Mapping[str, Endpoint],
        json: JsonResponse,
        on_refusal: RefusalHook | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._app = app
        # Each route's endpoint, and its duration series by status (the endpoints' own few statuses), bound
        # on first use: a request finds its series by one int lookup, not by a tuple of path, method, status.
        self._routes: dict[str, tuple[Endpoint, dict[int, Durations]]] = {
            path: (endpoint, {}) for path, endpoint in routes.items()
        }
        self._json = json
        self._on_refusal = on_refusal
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = None
        if scope["type"] == "http" and scope["method"] == "POST":  # (a lifespan scope has no path)
            path = scope["path"]
            route = self._routes.get(path)
        if route is None:
            await self._app(scope, receive, send)
            return
        endpoint, durations = route
        started = perf_counter()
        status = 500  # an exception (Starlette answers 500) or a client gone: as RequestMetrics counts them
        try:
            try:
                response = await endpoint(Request(scope, receive, send))
            except ApiError as exc:
                if self._on_refusal is not None:
                    self._on_refusal(path, exc, client_address(scope))
                response = error_response(exc, self._json)
            except ClientDisconnect:
                return  # nobody left to answer
            await response(scope, receive, send)
            status = response.status_code
        finally:
            if self._metrics is not None:
                seconds = perf_counter() - started
                series = durations.get(status)
                if series is None:
                    series = durations[status] = self._metrics.request_durations(path, "POST", status)
                series.observe(seconds)
