"""JSON responses rendered with one shared encoder.

Starlette's ``JSONResponse`` passes non-default options to ``json.dumps``, which then builds a new encoder for
every response; the output here is byte-for-byte the same (compact, UTF-8, no NaN).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import JSONResponse


class ApiResponse(JSONResponse):
    _encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))

    def render(self, content: Any) -> bytes:
        return self._encoder.encode(content).encode("utf-8")
