"""The API's error shape: ``{"error", "detail", "field"}`` with the status code that goes with it."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .responses import ApiResponse


class ApiError(Exception):
    """An error answered to the caller: ``detail`` says what was wrong and how to fix it; never a secret."""

    def __init__(self, status: int, error: str, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail
        self.field = field

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.error, "detail": self.detail}
        if self.field is not None:
            out["field"] = self.field
        return out


def bad_request(detail: str, field: str) -> ApiError:
    return ApiError(400, "bad_request", detail, field)


def error_response(exc: ApiError) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return ApiResponse(exc.body(), status_code=exc.status, headers=headers)


async def api_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc)
