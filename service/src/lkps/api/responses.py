"""How the API answers: JSON bodies of one response class, and errors in the API's shape."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from ..errors import ApiError

# The class every JSON answer is made with: Starlette's JSONResponse, or (speedup "json") one that renders
# the same bytes faster. Called as JSONResponse is: (content, status_code=200, headers=None).
JsonResponse = type[JSONResponse]
ExceptionHandler = Callable[[Request, Exception], Awaitable[Response]]
# Told of every API error answered: (request path, the error, the caller's address); counts and logs it.
RefusalHook = Callable[[str, ApiError, "str | None"], None]


def error_response(exc: ApiError, json: JsonResponse) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return json(exc.body(), status_code=exc.status, headers=headers)


def client_address(scope: Mapping[str, Any]) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


def exception_handlers(
    json: JsonResponse, on_refusal: RefusalHook | None = None
) -> Mapping[Any, ExceptionHandler]:
    """Starlette's ``exception_handlers``: an ``ApiError`` in the API's shape, a caller gone mid-request
    answered without a server error, anything else a bare 500 (its traceback in the server log)."""

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        if on_refusal is not None:
            on_refusal(request.scope["path"], exc, client_address(request.scope))
        return error_response(exc, json)

    async def disconnected(request: Request, exc: Exception) -> Response:
        # Nobody is left to read it (uvicorn drops it); answering keeps a hang-up out of the error log.
        return Response(status_code=400)

    async def internal_error(request: Request, exc: Exception) -> Response:
        # Details stay in the server log (uvicorn logs the traceback); the caller learns nothing internal.
        return json({"error": "internal_error", "detail": "unexpected server error; it has been logged"}, 500)

    return {ApiError: api_error, ClientDisconnect: disconnected, 500: internal_error}
