"""JSON responses rendered with orjson.

The output has the shape Starlette's ``JSONResponse`` gives (compact, UTF-8) at a tenth of the cost; the one
difference, a float NaN rendering as ``null`` instead of failing, cannot arise: no response carries floats.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse


class ApiResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
