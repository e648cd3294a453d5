"""The error a caller is answered with: a status, a machine-readable code, what was wrong and how to fix it.

Raised by any layer (identity, domain, storage); the HTTP edge (:mod:`lkps.api.responses`) renders it as
``{"error", "detail", "field"}``.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error answered to the caller: ``detail`` says what was wrong and how to fix it; never a secret."""

    def __init__(
        self, status: int, error: str, detail: str, field: str | None = None, *, reason: str | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail
        self.field = field
        # Why, for the refusal's log line and the lkps_refusals_total label (a constant, never caller input;
        # finer than ``error`` where that helps an operator, e.g. token_expired): the error code by default.
        self.reason = reason or error

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.error, "detail": self.detail}
        if self.field is not None:
            out["field"] = self.field
        return out


def bad_request(detail: str, field: str) -> ApiError:
    return ApiError(400, "bad_request", detail, field)
