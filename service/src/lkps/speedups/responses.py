"""JSON responses rendered with orjson.

The output has the shape Starlette's ``JSONResponse`` gives (compact, UTF-8) at a tenth of the cost; the one
difference, a float NaN rendering as ``null`` instead of failing, cannot arise: no response carries floats.
The headers are the two Starlette writes for a body without extra headers, made directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import JSONResponse


class ApiResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)

    def init_headers(self, headers: Mapping[str, str] | None = None) -> None:
        # Starlette's own would get the same two headers in about twice the time; status codes without a
        # body (1xx, 204, 304) and extra headers (an error's WWW-Authenticate) still take its way.
        if headers is None and self.status_code >= 200 and self.status_code not in (204, 304):
            self.raw_headers = [(b"content-length", b"%d" % len(self.body)), _JSON]
        else:
            super().init_headers(headers)


_JSON = (b"content-type", b"application/json")
