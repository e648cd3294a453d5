"""Speedup ``json`` (ApiResponse): the headers and body Starlette's JSONResponse gives, however built."""

from __future__ import annotations

import json

import pytest
from starlette.responses import JSONResponse

from lkps.speedups.responses import ApiResponse

BODY = {"livekit_token": "t", "livekit_url": "wss://lk.example", "expires_in": 3600, "ü": ["ß"]}


@pytest.mark.parametrize("status", [200, 201, 400, 404, 503])
@pytest.mark.parametrize("headers", [None, {"Retry-After": "5"}])
def test_headers_and_body_match_starlettes_json_response(status: int, headers: dict[str, str] | None) -> None:
    ours, theirs = ApiResponse(BODY, status, headers), JSONResponse(BODY, status, headers)
    assert ours.raw_headers == theirs.raw_headers
    assert json.loads(ours.body) == json.loads(theirs.body) == BODY


def test_a_bodiless_status_gets_no_content_length() -> None:
    assert ApiResponse(None, 204).raw_headers == JSONResponse(None, 204).raw_headers
